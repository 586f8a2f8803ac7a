"""query_items: pages of a DynamoDB Query, decoded, and no page read beyond the limit."""

from __future__ import annotations

from typing import Any

from courier.ledger._codec import query_items, to_item


class PagedTable:
    """A DynamoDB client whose Query answers from fixed pages and records every request."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.requests: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        index = int(kwargs.get("ExclusiveStartKey", {}).get("page", 0))
        answer: dict[str, Any] = {"Items": [to_item(item) for item in self.pages[index]]}
        if index + 1 < len(self.pages):
            answer["LastEvaluatedKey"] = {"page": index + 1}
        return answer


def pages_of(*sizes: int) -> list[list[dict[str, Any]]]:
    n = iter(range(1000))
    return [[{"n": next(n), "cost": 0.5} for _ in range(size)] for size in sizes]


def test_every_page_is_read_and_decoded() -> None:
    table = PagedTable(pages_of(2, 0, 3))
    items = list(query_items(table, {"TableName": "t"}))
    assert [item["n"] for item in items] == [0, 1, 2, 3, 4]
    assert items[0]["cost"] == 0.5
    assert [r.get("ExclusiveStartKey") for r in table.requests] == [None, {"page": 1}, {"page": 2}]


def test_the_request_given_is_not_changed() -> None:
    request = {"TableName": "t"}
    list(query_items(PagedTable(pages_of(1, 1)), request))
    assert request == {"TableName": "t"}


def test_a_limit_that_ends_on_a_page_boundary_reads_no_further_page() -> None:
    table = PagedTable(pages_of(2, 2, 2))
    assert [item["n"] for item in query_items(table, {"TableName": "t"}, limit=4)] == [0, 1, 2, 3]
    assert len(table.requests) == 2


def test_a_limit_inside_a_page_stops_there() -> None:
    table = PagedTable(pages_of(3, 3))
    assert [item["n"] for item in query_items(table, {"TableName": "t"}, limit=2)] == [0, 1]
    assert len(table.requests) == 1
