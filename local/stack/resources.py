"""Create the template's resources in the moto server, from the template's own properties.

Every resource type of `template.yaml` is either created (table, bucket, queues, rules, topic,
subscriptions, key, secret, log groups), turned into the local router's wiring (the SAM functions
and their event sources), or listed in `NOT_EMULATED` with the reason it does not matter locally
(IAM, policies, alarms, the layer). Anything else, or a property a creator does not know, stops
the stack with a `TemplateError` naming the resource and the property.

Physical names are `<stack name>-<logical id>` (lower case for buckets), so they are predictable
for `sam local invoke` env files.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.stack.template import Resolver, TemplateError, Unresolved

NOT_EMULATED: dict[str, str] = {
    "AWS::IAM::Role": "IAM is not enforced locally; the functions run in this process",
    "AWS::IAM::ManagedPolicy": "IAM is not enforced locally",
    "AWS::S3::BucketPolicy": "bucket policies are not enforced locally",
    "AWS::SQS::QueuePolicy": "queue policies are not enforced locally",
    "AWS::Serverless::LayerVersion": "the layer's package is imported from layers/courier",
    "AWS::CloudWatch::Alarm": "there are no CloudWatch metrics locally",
    "AWS::CloudWatch::Dashboard": "there are no CloudWatch metrics locally",
}


@dataclass(frozen=True)
class EventSource:
    """One event source of a function, as the router must drive it."""

    name: str
    kind: str  # "queue" (SQS batches), "eventbridge" (events unwrapped from a stand-in queue),
    # "stream" (DynamoDB stream batches), "schedule", "url" (function URL)
    properties: dict[str, Any]
    queue_url: str = ""
    stream_arn: str = ""


@dataclass
class FunctionSpec:
    logical_id: str
    handler: str
    environment: dict[str, str]
    timeout: int
    sources: list[EventSource] = field(default_factory=list)
    retry_attempts: int = 2  # asynchronous invocations (EventBridge)
    on_failure_queue_url: str = ""
    url: str = ""


@dataclass
class Provisioned:
    """What the provisioner created, for the router and the timeline."""

    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)  # ARN -> URL
    buckets: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    email_queues: dict[str, str] = field(default_factory=dict)  # subscription logical id -> queue URL


class Provisioner:
    """Walks the template's resources until every active one is created or explained."""

    def __init__(
        self,
        resolver: Resolver,
        clients: Callable[[str], Any],
        *,
        function_url: Callable[[str], str],
    ) -> None:
        self.r = resolver
        self.client = clients
        self.function_url = function_url
        self.out = Provisioned()
        self.stack = resolver.stack_name
        self.region = resolver.region
        self.account = resolver.account
        self._pending_bridges: list[tuple[str, str, str, dict[str, Any]]] = []

    # -- driver -----------------------------------------------------------------------------

    def provision(self) -> Provisioned:
        resources: Mapping[str, Any] = self.r.template["Resources"]
        pending: list[str] = []
        for logical_id, resource in resources.items():
            kind = resource.get("Type", "")
            if not self.r.active(logical_id):
                continue
            if kind in NOT_EMULATED:
                self._placeholder(logical_id, kind)
                continue
            if kind == "AWS::Serverless::Function":
                self._function_names(logical_id)
            if kind not in _CREATORS:
                raise TemplateError(
                    f"{logical_id}: the local stack cannot create {kind}; teach local/stack/resources.py "
                    "to create it or list it in NOT_EMULATED with the reason"
                )
            pending.append(logical_id)
        # Functions last: their environment and event sources refer to everything else, and
        # rules that target a function hand it their stand-in queue.
        functions = [lid for lid in pending if resources[lid]["Type"] == "AWS::Serverless::Function"]
        self._create([lid for lid in pending if lid not in functions], resources)
        self._create(functions, resources)
        return self.out

    def _create(self, pending: list[str], resources: Mapping[str, Any]) -> None:
        while pending:
            waiting: dict[str, str] = {}
            for logical_id in pending:
                try:
                    _CREATORS[resources[logical_id]["Type"]](self, logical_id, resources[logical_id])
                except Unresolved as missing:
                    waiting[logical_id] = missing.name
            if len(waiting) == len(pending):
                detail = ", ".join(f"{lid} needs {name}" for lid, name in waiting.items())
                raise TemplateError(f"cannot resolve references: {detail}")
            pending = list(waiting)

    # -- helpers ----------------------------------------------------------------------------

    def _props(self, logical_id: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        resolved = self.r.resolve(resource.get("Properties") or {}, f"{logical_id}.Properties")
        return dict(resolved)

    def _name(self, logical_id: str) -> str:
        return f"{self.stack}-{logical_id}"

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def _leftover(self, logical_id: str, props: Mapping[str, Any]) -> None:
        if props:
            raise TemplateError(
                f"{logical_id}: properties the local stack does not emulate: {', '.join(sorted(props))}"
            )

    def _placeholder(self, logical_id: str, kind: str) -> None:
        name = self._name(logical_id)
        service = kind.split("::")[1].lower()
        self.r.refs[logical_id] = name
        self.r.attrs[(logical_id, "Arn")] = self._arn(service, name)

    def _function_names(self, logical_id: str) -> None:
        name = self._name(logical_id)
        self.r.refs[logical_id] = name
        self.r.attrs[(logical_id, "Arn")] = self._arn("lambda", f"function:{name}")

    def _queue(self, name: str, attributes: Mapping[str, str] | None = None) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=dict(attributes or {}))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.out.queue_arns[arn] = url
        return url, arn

    def queue_url_for(self, arn: str, where: str) -> str:
        if arn not in self.out.queue_arns:
            raise TemplateError(f"{where}: {arn} is not a queue of this stack")
        return self.out.queue_arns[arn]

    # -- creators ---------------------------------------------------------------------------

    def bucket(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("BucketName", self._name(logical_id).lower())
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name,
                VersioningConfiguration={"Status": props.pop("VersioningConfiguration")["Status"]},
            )
        if "BucketEncryption" in props:
            rules = []
            for declared in props.pop("BucketEncryption")["ServerSideEncryptionConfiguration"]:
                rule = dict(declared)
                if "ServerSideEncryptionByDefault" in rule:
                    rule["ApplyServerSideEncryptionByDefault"] = rule.pop("ServerSideEncryptionByDefault")
                rules.append(rule)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props.pop("PublicAccessBlockConfiguration")
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props.pop("OwnershipControls"))
        if "LifecycleConfiguration" in props:
            rules = []
            for declared in props.pop("LifecycleConfiguration")["Rules"]:
                rule = dict(declared)
                converted: dict[str, Any] = {"Status": rule.pop("Status"), "Filter": {"Prefix": ""}}
                if "Id" in rule:
                    converted["ID"] = rule.pop("Id")
                for key in ("NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload", "Expiration"):
                    if key in rule:
                        converted[key] = {k: int(v) for k, v in rule.pop(key).items()}
                self._leftover(f"{logical_id}.LifecycleConfiguration", rule)
                rules.append(converted)
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        notifications = props.pop("NotificationConfiguration", None)
        if notifications is not None:
            bridge = notifications.pop("EventBridgeConfiguration", {})
            self._leftover(f"{logical_id}.NotificationConfiguration", notifications)
            if str(bridge.get("EventBridgeEnabled", "false")).lower() == "true":
                s3.put_bucket_notification_configuration(
                    Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
        self._leftover(logical_id, props)
        self.out.buckets[logical_id] = name
        self.r.refs[logical_id] = name
        self.r.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        self.r.attrs[(logical_id, "DomainName")] = f"{name}.s3.amazonaws.com"

    def table(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("TableName", self._name(logical_id))
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props.pop("AttributeDefinitions"),
            "KeySchema": props.pop("KeySchema"),
            "BillingMode": props.pop("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
            if key in props:
                kwargs[key] = props.pop(key)
        if "StreamSpecification" in props:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": props.pop("StreamSpecification")["StreamViewType"],
            }
        if "SSESpecification" in props:
            kwargs["SSESpecification"] = {"Enabled": bool(props.pop("SSESpecification")["SSEEnabled"])}
        ttl = props.pop("TimeToLiveSpecification", None)
        pitr = props.pop("PointInTimeRecoverySpecification", None)
        self._leftover(logical_id, props)
        ddb = self.client("dynamodb")
        description = ddb.create_table(**kwargs)["TableDescription"]
        if ttl is not None:
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={
                    "Enabled": str(ttl.get("Enabled", True)).lower() == "true",
                    "AttributeName": ttl["AttributeName"],
                },
            )
        if pitr is not None:
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": str(pitr.get("PointInTimeRecoveryEnabled")).lower()
                    == "true"
                },
            )
        self.out.tables[logical_id] = name
        self.r.refs[logical_id] = name
        self.r.attrs[(logical_id, "Arn")] = description["TableArn"]
        if description.get("LatestStreamArn"):
            self.r.attrs[(logical_id, "StreamArn")] = description["LatestStreamArn"]

    def queue(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("QueueName", self._name(logical_id))
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
        ):
            if key in props:
                attributes[key] = str(props.pop(key))
        for key in ("SqsManagedSseEnabled", "FifoQueue", "ContentBasedDeduplication"):
            if key in props:
                attributes[key] = str(props.pop(key)).lower()
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in props:
                value = props.pop(key)
                attributes[key] = value if isinstance(value, str) else json.dumps(value)
        self._leftover(logical_id, props)
        url, arn = self._queue(name, attributes)
        self.r.refs[logical_id] = url
        self.r.attrs[(logical_id, "Arn")] = arn
        self.r.attrs[(logical_id, "QueueName")] = name
        self.r.attrs[(logical_id, "QueueUrl")] = url

    def _put_rule(self, name: str, pattern: Any, description: str, targets: list[dict[str, Any]]) -> str:
        events = self.client("events")
        arn = events.put_rule(
            Name=name,
            EventPattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
            State="ENABLED",
            Description=description[:512],
        )["RuleArn"]
        events.put_targets(Rule=name, Targets=targets)
        return str(arn)

    def rule(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("Name", self._name(logical_id))
        pattern = props.pop("EventPattern", None)
        if pattern is None:
            raise TemplateError(f"{logical_id}: only rules with an EventPattern are emulated")
        description = props.pop("Description", "")
        state = props.pop("State", "ENABLED")
        targets = []
        for declared_target in props.pop("Targets", []):
            target = dict(declared_target)
            arn = target.pop("Arn")
            entry: dict[str, Any] = {"Id": target.pop("Id")}
            for key in ("RetryPolicy", "DeadLetterConfig"):
                if key in target:
                    entry[key] = target.pop(key)
            self._leftover(f"{logical_id}.Targets", target)
            function = self._function_for_arn(arn)
            if ":sqs:" in arn:
                entry["Arn"] = arn
            elif function is not None:
                url, entry["Arn"] = self._queue(f"{name}-{entry['Id']}"[:80])
                self._pending_bridges.append((function, f"{logical_id}:{entry['Id']}", url, {}))
            else:
                raise TemplateError(f"{logical_id}: target {arn} is neither an SQS queue nor a function")
            targets.append(entry)
        self._leftover(logical_id, props)
        if state != "ENABLED":
            return
        rule_arn = self._put_rule(name, pattern, description, targets)
        self.r.refs[logical_id] = name
        self.r.attrs[(logical_id, "Arn")] = rule_arn

    def _function_for_arn(self, arn: str) -> str | None:
        for (logical_id, attr), value in self.r.attrs.items():
            if attr == "Arn" and value == arn and ":lambda:" in arn:
                return logical_id
        return None

    def kms_key(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        kms = self.client("kms")
        kwargs: dict[str, Any] = {"Description": props.pop("Description", "")}
        if "KeyPolicy" in props:
            kwargs["Policy"] = json.dumps(props.pop("KeyPolicy"))
        rotation = str(props.pop("EnableKeyRotation", "false")).lower() == "true"
        self._leftover(logical_id, props)
        metadata = kms.create_key(**kwargs)["KeyMetadata"]
        if rotation:
            kms.enable_key_rotation(KeyId=metadata["KeyId"])
        self.r.refs[logical_id] = metadata["KeyId"]
        self.r.attrs[(logical_id, "Arn")] = metadata["Arn"]
        self.r.attrs[(logical_id, "KeyId")] = metadata["KeyId"]

    def kms_alias(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("AliasName")
        self.client("kms").create_alias(AliasName=name, TargetKeyId=props.pop("TargetKeyId"))
        self._leftover(logical_id, props)
        self.r.refs[logical_id] = name

    def topic(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("TopicName", self._name(logical_id))
        attributes = {k: str(props.pop(k)) for k in ("DisplayName", "KmsMasterKeyId") if k in props}
        self._leftover(logical_id, props)
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.out.topics[logical_id] = arn
        self.r.refs[logical_id] = arn
        self.r.attrs[(logical_id, "TopicArn")] = arn
        self.r.attrs[(logical_id, "TopicName")] = name

    def subscription(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        topic = props.pop("TopicArn")
        protocol = props.pop("Protocol")
        endpoint = props.pop("Endpoint")
        self._leftover(logical_id, props)
        sns = self.client("sns")
        if protocol == "sqs":
            arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=endpoint)["SubscriptionArn"]
        elif protocol == "email":
            url, queue_arn = self._queue(f"{self._name(logical_id)}-inbox")
            arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
            self.out.email_queues[logical_id] = url
        else:
            raise TemplateError(f"{logical_id}: SNS protocol {protocol} is not emulated (email and sqs are)")
        self.r.refs[logical_id] = arn

    def secret(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("Name", self._name(logical_id))
        description = props.pop("Description", "")
        if "SecretString" in props:
            value = str(props.pop("SecretString"))
        elif "GenerateSecretString" in props:
            value = _generated_secret(props.pop("GenerateSecretString"), logical_id)
        else:
            raise TemplateError(f"{logical_id}: a secret needs SecretString or GenerateSecretString")
        self._leftover(logical_id, props)
        arn = self.client("secretsmanager").create_secret(
            Name=name, Description=description, SecretString=value
        )["ARN"]
        self.out.secrets[logical_id] = arn
        self.r.refs[logical_id] = arn
        self.r.attrs[(logical_id, "Id")] = arn

    def log_group(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = self._props(logical_id, resource)
        name = props.pop("LogGroupName", f"/{self.stack}/{logical_id}")
        retention = props.pop("RetentionInDays", None)
        self._leftover(logical_id, props)
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if retention is not None:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(retention))
        self.r.refs[logical_id] = name
        self.r.attrs[(logical_id, "Arn")] = self._arn("logs", f"log-group:{name}:*")

    def function(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        globals_ = ((self.r.template.get("Globals") or {}).get("Function")) or {}
        raw = dict(resource.get("Properties") or {})
        environment: dict[str, Any] = {}
        for source in (globals_.get("Environment"), raw.get("Environment")):
            variables = (source or {}).get("Variables") or {}
            environment.update(variables)
        if raw.get("FunctionUrlConfig") is not None:
            url = self.function_url(logical_id)
            self.r.attrs[(f"{logical_id}Url", "FunctionUrl")] = url
        env = self.r.resolve(environment, f"{logical_id}.Environment.Variables")
        timeout = int(self.r.resolve(raw.get("Timeout", globals_.get("Timeout", 3)), logical_id))
        spec = FunctionSpec(
            logical_id=logical_id,
            handler=str(raw["Handler"]),
            environment={k: _env_text(v) for k, v in env.items()},
            timeout=timeout,
            url=self.r.attrs.get((f"{logical_id}Url", "FunctionUrl"), ""),
        )
        invoke = self.r.resolve(raw.get("EventInvokeConfig") or {}, f"{logical_id}.EventInvokeConfig")
        if invoke:
            spec.retry_attempts = int(invoke.get("MaximumRetryAttempts", 2))
            destination = ((invoke.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            if destination:
                spec.on_failure_queue_url = self.queue_url_for(destination, f"{logical_id}.EventInvokeConfig")
        sources = []
        for name, event in (raw.get("Events") or {}).items():
            where = f"{logical_id}.Events.{name}"
            kind = event.get("Type")
            props = dict(self.r.resolve(event.get("Properties") or {}, where))
            if kind == "EventBridgeRule":
                rule_name = f"{self._name(logical_id)}{name}"[:64]
                url, arn = self._queue(f"{rule_name}-target")
                target: dict[str, Any] = {"Id": f"{name}Target", "Arn": arn}
                if "RetryPolicy" in props:
                    target["RetryPolicy"] = props["RetryPolicy"]
                rule_arn = self._put_rule(rule_name, props["Pattern"], f"{logical_id} {name}", [target])
                self.r.refs[f"{logical_id}{name}"] = rule_name
                self.r.attrs[(f"{logical_id}{name}", "Arn")] = rule_arn
                sources.append(EventSource(name, "eventbridge", props, queue_url=url))
            elif kind == "SQS":
                sources.append(
                    EventSource(name, "queue", props, queue_url=self.queue_url_for(props["Queue"], where))
                )
            elif kind == "DynamoDB":
                sources.append(EventSource(name, "stream", props, stream_arn=props["Stream"]))
            elif kind == "Schedule":
                sources.append(EventSource(name, "schedule", props))
            else:
                raise TemplateError(f"{where}: event source type {kind} is not emulated")
        for function, name, url, props in self._pending_bridges:
            if function == logical_id:
                sources.append(EventSource(name, "eventbridge", props, queue_url=url))
        if spec.url:
            sources.append(EventSource("FunctionUrl", "url", {}))
        spec.sources = sources
        self.out.functions[logical_id] = spec


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _generated_secret(spec: Mapping[str, Any], where: str) -> str:
    spec = dict(spec)
    length = int(spec.pop("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if str(spec.pop("ExcludePunctuation", "false")).lower() != "true":
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    spec.pop("ExcludeCharacters", None)
    if spec:
        raise TemplateError(f"{where}.GenerateSecretString: not emulated: {', '.join(sorted(spec))}")
    return "".join(secrets.choice(alphabet) for _ in range(length))


_CREATORS: dict[str, Callable[[Provisioner, str, Mapping[str, Any]], None]] = {
    "AWS::S3::Bucket": Provisioner.bucket,
    "AWS::DynamoDB::Table": Provisioner.table,
    "AWS::SQS::Queue": Provisioner.queue,
    "AWS::Events::Rule": Provisioner.rule,
    "AWS::KMS::Key": Provisioner.kms_key,
    "AWS::KMS::Alias": Provisioner.kms_alias,
    "AWS::SNS::Topic": Provisioner.topic,
    "AWS::SNS::Subscription": Provisioner.subscription,
    "AWS::SecretsManager::Secret": Provisioner.secret,
    "AWS::Logs::LogGroup": Provisioner.log_group,
    "AWS::Serverless::Function": Provisioner.function,
}

RATE_RE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


def schedule_seconds(expression: str) -> float:
    """Seconds between runs of a `rate(...)` schedule expression."""
    match = RATE_RE.match(expression.strip())
    if not match:
        raise TemplateError(f"schedule {expression!r}: only rate(...) expressions are emulated")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit
