"""The local stack's DynamoDB transactions (`local.stack.transactions`) against moto's own: the
same table, the same transactions, in two regions of one moto, one with each backend. Answers
(error codes and cancellation reasons), items and stream records must be the same."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from local.stack.transactions import ItemSnapshotTransactions, install

ACCOUNT = "123456789012"
PLAIN, SNAPSHOT = "us-east-1", "eu-west-1"
TABLE = "ledger"


def s(value: str) -> dict[str, str]:
    return {"S": value}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": s(pk), "sk": s(sk)}


SEED = [
    {**key("RUN#a", "RUN"), "status": s("Running"), "tasks_RUNNING": {"N": "2"}},
    {**key("RUN#a", "TASK#1"), "status": s("RUNNING"), "rank": {"N": "3"}},
    {**key("RUN#a", "TASK#2"), "status": s("RUNNING"), "rank": {"N": "3"}},
    {**key("RUN#b", "RUN"), "status": s("Submitted")},
]


def put(item: dict[str, Any], condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": TABLE, "Item": item}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def update(k: dict[str, Any], expression: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": k,
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
            **extra,
        }
    }


def set_task(task: str, status: str, rank: int, **extra: Any) -> dict[str, Any]:
    """A task's status, written only over a lower rank (the ledger's forward-only rule)."""
    return update(
        key("RUN#a", task),
        "SET #s = :s, #r = :r",
        {":s": s(status), ":r": {"N": str(rank)}},
        ExpressionAttributeNames={"#s": "status", "#r": "rank"},
        ConditionExpression="#r < :r",
        **extra,
    )


ADVANCE_TASK_1 = set_task("TASK#1", "SUCCEEDED", 5)
COUNT_ON_RUN = update(
    key("RUN#a", "RUN"),
    "ADD tasks_RUNNING :minus, tasks_SUCCEEDED :one",
    {":minus": {"N": "-1"}, ":one": {"N": "1"}},
)
NEW_EVENT = put({**key("RUN#a", "EVENT#ENDED"), "kind": s("ENDED")}, "attribute_not_exists(pk)")
DELETE_B = {"Delete": {"TableName": TABLE, "Key": key("RUN#b", "RUN")}}
CHECK_B_SUBMITTED = {
    "ConditionCheck": {
        "TableName": TABLE,
        "Key": key("RUN#b", "RUN"),
        "ConditionExpression": "#s = :v",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":v": s("Submitted")},
    }
}
CHECK_B_RUNNING = {
    "ConditionCheck": {
        **CHECK_B_SUBMITTED["ConditionCheck"],
        "ExpressionAttributeValues": {":v": s("Running")},
    }
}
STALE_TASK_2 = set_task("TASK#2", "RUNNABLE", 1, ReturnValuesOnConditionCheckFailure="ALL_OLD")
UPSERT_NEW = update(
    key("RUN#c", "RUN"), "SET #s = :v", {":v": s("Submitted")}, ExpressionAttributeNames={"#s": "status"}
)

SCENARIOS: dict[str, list[list[dict[str, Any]]]] = {
    "all succeed": [[ADVANCE_TASK_1, COUNT_ON_RUN, NEW_EVENT, CHECK_B_SUBMITTED, UPSERT_NEW]],
    "condition check refused: nothing applied": [[ADVANCE_TASK_1, COUNT_ON_RUN, NEW_EVENT, CHECK_B_RUNNING]],
    "refused with ALL_OLD, new items undone": [[UPSERT_NEW, NEW_EVENT, STALE_TASK_2]],
    "delete undone": [[DELETE_B, STALE_TASK_2]],
    "the same delivery twice": [[ADVANCE_TASK_1, COUNT_ON_RUN], [ADVANCE_TASK_1, COUNT_ON_RUN]],
    "put refused because the item exists": [[NEW_EVENT], [COUNT_ON_RUN, NEW_EVENT]],
    "two operations on one item": [
        [ADVANCE_TASK_1, update(key("RUN#a", "TASK#1"), "SET x = :x", {":x": s("x")})]
    ],
    "invalid update expression": [
        [
            NEW_EVENT,
            update(
                key("RUN#a", "RUN"),
                "ADD #s :one",
                {":one": {"N": "1"}},
                ExpressionAttributeNames={"#s": "status"},
            ),
        ]
    ],
    "missing table": [[NEW_EVENT, {"Put": {"TableName": "nope", "Item": key("x", "y")}}]],
}


@pytest.fixture
def clients() -> Iterator[dict[str, Any]]:
    with mock_aws():
        install(ACCOUNT, SNAPSHOT)
        out = {}
        for region in (PLAIN, SNAPSHOT):
            client = boto3.client("dynamodb", region_name=region)
            client.create_table(
                TableName=TABLE,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            for item in SEED:
                client.put_item(TableName=TABLE, Item=item)
            out[region] = client
        yield out


def outcome(client: Any, transactions: list[list[dict[str, Any]]]) -> list[Any]:
    answers: list[Any] = []
    for transaction in transactions:
        try:
            client.transact_write_items(TransactItems=transaction)
            answers.append("ok")
        except ClientError as error:
            answers.append((error.response["Error"]["Code"], error.response.get("CancellationReasons")))
    return answers


def items(client: Any) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName=TABLE)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def stream(region: str) -> list[tuple[str, Any, Any, Any]]:
    shard = dynamodb_backends[ACCOUNT][region].get_table(TABLE).stream_shard
    assert shard is not None
    records = [r.to_json() for r in shard.items]
    return [
        (
            r["eventName"],
            r["dynamodb"]["Keys"],
            r["dynamodb"].get("OldImage"),
            r["dynamodb"].get("NewImage"),
        )
        for r in records
    ]


def test_the_stack_backend_is_installed_only_where_asked(clients: dict[str, Any]) -> None:
    assert isinstance(dynamodb_backends[ACCOUNT][SNAPSHOT].transact_write_items, ItemSnapshotTransactions)
    assert not isinstance(dynamodb_backends[ACCOUNT][PLAIN].transact_write_items, ItemSnapshotTransactions)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_answers_items_and_stream_as_moto(clients: dict[str, Any], name: str) -> None:
    transactions = SCENARIOS[name]
    expected = outcome(clients[PLAIN], transactions)
    got = outcome(clients[SNAPSHOT], transactions)

    assert got == expected
    assert items(clients[SNAPSHOT]) == items(clients[PLAIN])
    assert stream(SNAPSHOT) == stream(PLAIN)


def test_a_cancelled_transaction_leaves_the_table_and_stream_as_they_were(clients: dict[str, Any]) -> None:
    client = clients[SNAPSHOT]
    before_items, before_stream = items(client), stream(SNAPSHOT)

    answers = outcome(client, [[UPSERT_NEW, NEW_EVENT, ADVANCE_TASK_1, CHECK_B_RUNNING]])

    code, reasons = answers[0]
    assert code == "TransactionCanceledException"
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert items(client) == before_items
    assert stream(SNAPSHOT) == before_stream


def test_refusal_returns_the_old_item_when_asked(clients: dict[str, Any]) -> None:
    (answer,) = outcome(clients[SNAPSHOT], [[STALE_TASK_2]])

    _, reasons = answer
    assert reasons[0]["Code"] == "ConditionalCheckFailed"
    assert reasons[0]["Item"]["status"] == s("RUNNING")


def test_a_cancelled_transaction_never_undoes_a_write_made_meanwhile(clients: dict[str, Any]) -> None:
    """moto's server answers in threads: a transaction that writes an item and is then cancelled
    puts the item back as it was, which would undo another request's write made in between. The
    stack's backend orders them (DynamoDB isolates transactions): no increment is lost."""
    backend = dynamodb_backends[ACCOUNT][SNAPSHOT]
    counter = key("RUN#b", "RUN")
    rounds = 150
    cancelled_bump = [
        update(counter, "ADD n :one", {":one": {"N": "1"}}),
        update(
            key("RUN#a", "RUN"), "SET x = :x", {":x": s("x")}, ConditionExpression="attribute_not_exists(pk)"
        ),
    ]

    def cancelled() -> None:
        for _ in range(rounds):
            with pytest.raises(Exception, match="Transaction cancelled"):
                backend.transact_write_items(cancelled_bump)

    def single() -> None:
        for _ in range(rounds):
            backend.update_item(
                TABLE,
                counter,
                update_expression="ADD n :one",
                expression_attribute_names=None,
                expression_attribute_values={":one": {"N": "1"}},
                condition_expression=None,
            )

    threads = [threading.Thread(target=cancelled), threading.Thread(target=single)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = clients[SNAPSHOT].get_item(TableName=TABLE, Key=counter)["Item"]
    assert stored["n"] == {"N": str(rounds)}


def test_transactions_on_the_same_item_from_many_threads_lose_no_write(clients: dict[str, Any]) -> None:
    """Runs of one batch ending at once, each in its own transaction pinned on the count it read
    (as `RunLedger.finish` does): a refused transaction must not put back an item another one
    wrote meanwhile, so the count ends at the number of runs and every run's end stays."""
    client = clients[SNAPSHOT]
    client.put_item(TableName=TABLE, Item={**key("BATCH#b", "BATCH"), "ended": {"N": "0"}})
    runs = [f"RUN#r{i}" for i in range(12)]

    def end(run: str) -> None:
        while True:
            item = client.get_item(TableName=TABLE, Key=key("BATCH#b", "BATCH"), ConsistentRead=True)["Item"]
            seen = item["ended"]["N"]
            try:
                client.transact_write_items(
                    TransactItems=[
                        put({**key(run, "RUN"), "status": s("Succeeded")}),
                        update(
                            key("BATCH#b", "BATCH"),
                            "ADD ended :one",
                            {":one": {"N": "1"}, ":seen": {"N": seen}},
                            ConditionExpression="ended = :seen",
                        ),
                    ]
                )
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise

    threads = [threading.Thread(target=end, args=(run,)) for run in runs]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often, as moto's server threads do under load
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    batch = client.get_item(TableName=TABLE, Key=key("BATCH#b", "BATCH"), ConsistentRead=True)["Item"]
    assert batch["ended"]["N"] == str(len(runs))
    for run in runs:
        assert client.get_item(TableName=TABLE, Key=key(run, "RUN"))["Item"]["status"] == s("Succeeded")
