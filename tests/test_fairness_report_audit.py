"""The fairness report's own arithmetic (studies/fairness.py): the head is a fifth, and no provider's
share is overwritten or merged by the labels the report adds."""

from edgerec.studies.fairness import FairnessStudy, _top, head_rows


def test_the_head_is_exactly_the_most_popular_fifth():
    for n in (5, 10, 100, 1000):
        ids = [f"i{k:04d}" for k in range(n)]
        head = head_rows(ids, list(range(n)))
        assert len(head) == n // 5  # int(n * (1 - 0.8)) held one item too few
        assert head == set(range(n - n // 5, n))
    assert head_rows(["b", "a", "c", "d", "e"], [1.0] * 5) == {1}  # ties by id: "a"


def test_a_provider_named_others_keeps_its_share():
    shares = {"others": 0.40, **{f"p{k}": 0.06 for k in range(10)}}
    top = _top(shares, count=8)
    assert top["others"] == 0.40 and abs(top["(others)"] - 0.18) < 1e-12
    assert abs(sum(top.values()) - 1.0) < 1e-12


def test_an_unnamed_provider_and_one_named_unknown_are_two_rows():
    record = {"exposure": {"provider": {"": 0.3, "(unknown)": 0.7}, "language": {}, "modality": {}},
              "popularity_bias": {}, "popularity_bucket": {}, "segments": [], "trade_off": [], "note": "x"}
    table = FairnessStudy.tables(record)[0]
    assert sorted(r["provider"] for r in table.rows) == ["((unknown))", "(unknown)"]
