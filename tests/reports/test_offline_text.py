"""`driftwatch drift` / `report` with a config of text columns: both files described as the monitor does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitor.app.demo import chat
from monitor.core.config import load_config
from monitor.reports.offline import evaluate_inputs, load_inputs, offline_report

LLM_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm" / "config.yaml"


def files(tmp_path: Path, language: str, with_completion: bool = True) -> tuple[Path, Path]:
    chat.reference(600, seed=5).to_csv(tmp_path / "ref.csv", index=False)
    asked = chat.prompts(300, language, seed=9)
    current = pd.DataFrame({"prompt": asked, **({"completion": [chat.answer(p) for p in asked]} if with_completion else {})})
    current.to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path / "ref.csv", tmp_path / "cur.csv"


def drifted(tmp_path: Path, language: str) -> set[str]:
    inputs = load_inputs(*files(tmp_path, language), load_config(LLM_EXAMPLE), "chat")
    return {n for n, f in evaluate_inputs(inputs, strict=False).features.items() if f.drifted}


def test_english_files_do_not_drift(tmp_path: Path) -> None:
    assert drifted(tmp_path, "english") == set()


def test_a_german_file_drifts_in_its_language_descriptors(tmp_path: Path) -> None:
    assert {"prompt.non_ascii_share", "prompt.oov_share"} <= drifted(tmp_path, "german")


def test_a_file_without_completions_has_their_descriptors_absent(tmp_path: Path) -> None:
    inputs = load_inputs(*files(tmp_path, "english", with_completion=False), load_config(LLM_EXAMPLE), "chat")
    assert ("completion.chars" in inputs.absent_in_current, "prompt.chars" in inputs.absent_in_current) == (True, False)


def test_the_offline_report_shows_the_drifted_prompts_masked(tmp_path: Path) -> None:
    ref, cur = files(tmp_path, "german")
    frame = pd.read_csv(cur)
    frame.loc[0, "prompt"] = "Brauche ich übermorgen früh in Köln einen Regenschirm? anna.schmidt@example.de"
    frame.to_csv(cur, index=False)
    html = offline_report(load_config(LLM_EXAMPLE), "chat", ref, cur, evidently=False)
    assert ("Brauche ich übermorgen früh in Köln einen Regenschirm? [EMAIL]" in html, "anna.schmidt" in html) == (True, False)
