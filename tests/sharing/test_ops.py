"""Operations are typed at the owner/forwarder boundary: a misspelt, missing or extra argument is an error where
the call is made and where the owner reads it, never a silent None."""

import pytest
from pydantic import ValidationError

from hebbian_memory.models import MemoryInput
from hebbian_memory.sharing.ops import OPS, RECALL, ForgetArgs, RecallArgs, RememberManyArgs


def test_every_operation_forbids_arguments_it_does_not_know() -> None:
    for op in OPS.values():
        assert op.args.model_config.get("extra") == "forbid", op.name


def test_a_misspelt_or_missing_argument_is_refused_not_dropped() -> None:
    with pytest.raises(ValidationError, match="kk"):
        RecallArgs.model_validate({"query": "tea", "kk": 3})
    with pytest.raises(ValidationError, match="query"):
        RecallArgs.model_validate({"k": 3})
    with pytest.raises(ValidationError, match="idz"):
        ForgetArgs.model_validate({"idz": [1]})


def test_arguments_cross_the_wire_as_they_were_made() -> None:
    made = RememberManyArgs(memories=[MemoryInput(content="Tea at four.", tags=["tea"])], session_id=3, used=[1, 2])
    assert RememberManyArgs.model_validate(made.model_dump()) == made
    asked = RecallArgs(query="tea", k=5, min_relevance=float("nan"), project="p")
    again = RECALL.args.model_validate(asked.model_dump())
    assert again.query == "tea"
    assert again.k == 5
    assert again.project == "p"
    assert again.min_relevance != again.min_relevance, "a NaN reaches the owner's checks as a NaN (refused there)"
