from plt.items import ITEM_FIELDS, make_item


def test_an_item_has_the_contracts_fields_in_order():
    fields = {"name": "Wool Coat", "product_id": 99, "date": "2026-11-23T00:00:00Z"}
    item = make_item({**fields, "canonical": "/product/x-99"}, [{"sku": "100990-S"}])
    assert tuple(item) == ITEM_FIELDS  # what the page gave beside the contract is left out
    assert item["product_id"] == 99 and item["name"] == "Wool Coat"
    assert item["old_price"] is None  # a field the page did not give
    assert item["stock_jsons"] == [{"sku": "100990-S"}]


def test_the_stock_answer_wins_over_a_stored_one():
    assert make_item({"stock_jsons": [1]}, None)["stock_jsons"] is None
