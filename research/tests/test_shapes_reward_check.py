"""shapes_reward_check: within-group AUCs of a scorer against the oracle on the shipped generator's samples."""

import json

from research.shapes_grpo import shapes_reward_check


def test_reward_check_reports_every_auc(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert shapes_reward_check.main(["--prompts", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result == json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["prompts"] == 2
    for key in ("within_group_auc", "objects_auc", "relations_given_objects_auc", "verified_auc",
                "clean_given_relations_auc"):
        pairs = result[key.replace("auc", "pairs")]
        assert pairs >= 0 and (result[key] is None) == (pairs == 0)
        assert result[key] is None or 0.0 <= result[key] <= 1.0
    assert result["pairs"] == result["within_group_pairs"]
