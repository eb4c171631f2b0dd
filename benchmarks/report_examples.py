"""Time to pick a drifted window's example texts for its report (monitor.reports.examples).

    python3 benchmarks/report_examples.py                  # a 10,000-prompt window, 5 repeats
    python3 benchmarks/report_examples.py --size 1000      # quick run

The LLM demo's chat model (examples/llm/config.yaml): a 2,000-call English reference and a window of
German calls (prompts and answers), both described and evaluated as the monitor does; then
`window_examples` for both text columns at the config's 5 examples each, and at the maximum, 20. It
ranks every text of the window on every drifted descriptor and masks and cuts only those it shows.
One prompt in 20 carries an email and one in 50 is 2,000 characters long, so masking and cutting do
real work. Times are wall-clock medians; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.app.demo import chat
from monitor.core.config import load_config
from monitor.drift import build_profile, evaluate, specs_from_config
from monitor.reports.examples import window_examples
from monitor.text.columns import describe_reference_frame, model_frame

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "llm" / "config.yaml"


def window(size: int) -> list[dict[str, object]]:
    prompts = chat.prompts(size, "german", seed=9)
    for i in range(0, size, 20):
        prompts[i] += f" Antwort bitte an nutzer{i}@example.de"
    for i in range(7, size, 50):
        prompts[i] = (prompts[i] + " ") * (2000 // len(prompts[i]) + 1)
    return chat.calls(prompts)


def main(argv: list[str] | None = None) -> float:
    """Prints the timings; returns the median seconds at the config's 5 examples per column."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000, help="texts in the window")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (median)")
    args = parser.parse_args(argv)
    config = load_config(CONFIG)
    model = config.model("chat")
    reference, profiles = describe_reference_frame(model, chat.reference(2000, seed=5), keep_texts=True)
    specs, settings = specs_from_config(config, "chat")
    current = model_frame(model, window(args.size), profiles, keep_texts=True)
    result = evaluate(build_profile(reference, specs, settings), current)
    features = list(result.features.values())
    drifted = sum(f.drifted for f in features)
    print(f"window of {args.size:,} calls, {drifted} of {len(features)} descriptors drifted; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeats}")
    medians = {}
    for n in (5, 20):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            picked = window_examples(features, reference, current, {"prompt": n, "completion": n})
            times.append(time.perf_counter() - start)
        medians[n] = statistics.median(times)
        shown = sum(len(e.current) + len(e.reference) for e in picked)
        print(f"{n:>2} examples per text column: median {medians[n]:.3f} s (min {min(times):.3f}, max {max(times):.3f}); "
              f"{shown} texts shown")
    return medians[5]


if __name__ == "__main__":
    main()
