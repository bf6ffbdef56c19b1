"""Turn benchmark results into the printed table, with every target checked against its figure."""

from __future__ import annotations


def targets(results: dict) -> list[dict]:
    """The issue's targets: (what, measured, required, met)."""
    rows = []
    prep = results.get("preparation")
    if prep:
        fps, decode = prep["talkface_prepare"]["frames_per_second"], prep["decode_only"]["frames_per_second"]
        rows.append(_row("preparation frames/s (2 cores, 256x256 clips)", fps, 300, fps >= 300))
        rows.append(_row("preparation / pure decode", round(fps / decode, 2), 1 / 3, fps >= decode / 3))
    for stage, values in results.get("training", {}).items():
        ratio = values["loader_over_step"]
        rows.append(_row(f"{stage}: loader / training step", ratio, 3, ratio >= 3))
        if "loader_over_step_bf16_mixed" in values:  # the faster step must be fed too
            ratio = values["loader_over_step_bf16_mixed"]
            rows.append(_row(f"{stage}: loader / training step, cpu bf16-mixed", ratio, 3, ratio >= 3))
    generation = results.get("generation", {})
    sizes = sorted(int(k[:-2]) for k in generation if k.endswith("px"))
    if sizes:
        smallest = generation[f"{sizes[0]}px"]
        runs = list(smallest.values())
        rows.append(
            _row(
                f"generation frames/s at {sizes[0]} px (end to end)",
                round(runs[0]["frames_per_second"], 1),
                40,
                runs[0]["frames_per_second"] >= 40,
            )
        )
        after_load = runs[0].get("first_frame_after_load_seconds")
        if after_load is not None:  # runs before 2026-11-30 did not measure it
            rows.append(
                _row(
                    f"first frame after the models are loaded at {sizes[0]} px (s)",
                    round(after_load, 3),
                    0.3,
                    after_load <= 0.3,
                )
            )
        if len(runs) > 1:
            ratio = runs[1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
            rows.append(
                _row(
                    f"peak memory {list(smallest)[1]} / {list(smallest)[0]} of audio",
                    round(ratio, 3),
                    1.15,
                    ratio <= 1.15,
                )
            )
    for length, run in generation.get("released", {}).items():
        fps = round(run["frames_per_second"], 1)
        rows.append(_row(f"generation frames/s, released models, {length} of audio (end to end)", fps, 40, fps >= 40))
        after_load = run.get("first_frame_after_load_seconds")
        if after_load is not None:
            rows.append(
                _row(
                    "first frame after the models are loaded, released models (s)",
                    round(after_load, 3),
                    0.3,
                    after_load <= 0.3,
                )
            )
    return rows


def _seconds(run: dict, key: str) -> str:
    """A figure in seconds, or a dash for results from before it was measured."""
    return f"{run[key]:.2f}" if key in run else "–"


def _row(what: str, measured: float, required: float, met: bool) -> dict:
    return {"what": what, "measured": measured, "required": round(required, 3), "met": bool(met)}


def format_report(results: dict) -> str:
    machine = results["machine"]
    gpu = machine["gpu"]["name"] if machine.get("gpu") else "no GPU"
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {gpu}; torch {machine['versions'].get('torch')}",
        "",
    ]
    prep = results.get("preparation")
    if prep:
        lines += ["| preparation | clips | frames | seconds | frames/s |", "|---|---|---|---|---|"]
        for name, label in (
            ("decode_only", "pure decoding (the limit)"),
            ("talkface_prepare", "talkface prepare"),
            ("naive_per_frame_detection", "naive: detector on every frame"),
        ):
            row = prep[name]
            lines.append(
                f"| {label} | {row['clips']} | {row['frames']} | {row['seconds']} | {row['frames_per_second']} |"
            )
        lines.append("")
        profile = prep.get("profile_one_process")
        if profile:
            lines += [
                f"| talkface prepare in 1 process ({profile['frames']} frames, "
                f"{profile['frames_per_second']} frames/s): stage | seconds | ms/frame | share |",
                "|---|---|---|---|",
            ]
            for stage, row in profile["stages"].items():
                lines.append(f"| {stage} | {row['seconds']} | {row['ms_per_frame']} | {100 * row['share']:.0f} % |")
            lines.append("")
        floor = prep.get("landmark_fit_floor")
        if floor:
            lines += [
                f"Floor: decoding a frame takes {floor['decode_ms_per_frame']} ms and one fit of the 68-point "
                f"landmark model {floor['fit_ms_per_frame']} ms ({floor['frames']} frames, one process), so a "
                f"preparation that fits every frame reaches at most {floor['best_ratio']} of pure decoding.",
                "",
            ]
    if results.get("training"):
        lines += ["| training | loader samples/s | training step samples/s | loader / step |", "|---|---|---|---|"]
        for stage, values in results["training"].items():
            steps = [(values["train_step"], values["loader_over_step"])]
            if "train_step_bf16_mixed" in values:
                steps.append((values["train_step_bf16_mixed"], values["loader_over_step_bf16_mixed"]))
            for step, ratio in steps:
                lines.append(
                    f"| {stage}, batch {step['batch_size']}, {step['accelerator']} {step['precision']} | "
                    f"{values['loader']['samples_per_second']} | {step['samples_per_second']} | {ratio} |"
                )
        lines.append("")
    generation = results.get("generation", {})
    runs = [
        (f"{size} crop", length, run)
        for size, by_length in generation.items()
        if size.endswith("px")
        for length, run in by_length.items()
    ]
    if runs:
        lines += [
            "| generation (audio file → mp4) | frames | frames/s | real-time factor | first frame (s) "
            "| loading (s) | first frame after loading (s) | peak RSS (MiB) | stage 2 in |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        runs += [("released models", length, run) for length, run in generation.get("released", {}).items()]
        for what, length, run in runs:
            lines.append(
                f"| {what}, {length} of audio | {run['frames']} | {run['frames_per_second']:.1f} | "
                f"{run['realtime_factor']:.2f} | {run['first_frame_seconds']:.2f} | {_seconds(run, 'load_seconds')} | "
                f"{_seconds(run, 'first_frame_after_load_seconds')} | {run['peak_rss_mib']:.0f} | "
                f"{run.get('precision', 'fp32')} |"  # runs before precision was recorded were fp32
            )
        lines.append("")
    checks = targets(results)
    if checks:
        lines += ["| target | measured | required | met |", "|---|---|---|---|"]
        for row in checks:
            lines.append(f"| {row['what']} | {row['measured']} | {row['required']} | {'yes' if row['met'] else 'NO'} |")
    return "\n".join(lines)
