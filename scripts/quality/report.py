#!/usr/bin/env python3
"""Table of scripts/bench-quality results: per clip and condition, the codec-only reference
and the listeners (median over listeners of each listener's median over 3 s pieces), plus the
listeners' device underruns and the speaker's capture overruns from `ruang bench latency --json`.

Usage: report.py RESULTS.jsonl OUT_DIR
"""
import json
import os
import statistics
import sys


def main():
    results_path, out = sys.argv[1], sys.argv[2]
    rows = [json.loads(l) for l in open(results_path) if l.strip()]
    by = {}
    for r in rows:
        by.setdefault((r["clip"], r["condition"]), []).append(r)
    busy = any(r.get("busy") for r in rows)
    print(
        "bench-quality: PESQ-WB (ITU-T P.862.2) and STOI per 3 s piece, medians"
        + ("; CPU hog (stress-ng --cpu 0) running" if busy else "")
    )
    print()
    hdr = (
        f"{'clip':<8} {'condition':<10} {'codec PESQ':>10} {'Ruang PESQ':>10} {'Δ':>6} "
        f"{'worst piece':>11} {'codec STOI':>10} {'Ruang STOI':>10} {'pieces':>6} "
        f"{'m2e ms':>6} {'m2e p50/p95':>11} {'underrun smp':>12} {'capt ovr':>8}"
    )
    print(hdr)
    summary = {}
    for (clip, cond), rs in by.items():
        codec = [r for r in rs if r["deg"].endswith("-codec.wav")]
        lis = [r for r in rs if "-listener-" in r["deg"] and r.get("pieces")]
        bench = {}
        try:
            b = json.load(open(os.path.join(out, clip, "bench.json")))
            bench = next(c for c in b["conditions"] if c["condition"] == cond)
        except (OSError, StopIteration, ValueError, KeyError):
            pass
        underruns = bench.get("frames", {}).get("device_underrun_samples", [])
        capture = bench.get("speaker_capture_overruns", "-")
        cp = codec[0].get("pesq_median") if codec else None
        cs = codec[0].get("stoi_median") if codec else None
        lp = statistics.median([r["pesq_median"] for r in lis]) if lis else None
        ls = statistics.median([r["stoi_median"] for r in lis]) if lis else None
        worst = min((r["pesq_min"] for r in lis), default=None)
        delay = statistics.median([r["delay_ms_median"] for r in lis]) if lis else None
        pieces = sum(r["pieces"] for r in lis)
        # Mouth-to-ear on the speech: the listeners' per-window lags, p50 and p95 (median
        # over listeners).
        m50 = [r["m2e_ms_p50"] for r in lis if "m2e_ms_p50" in r]
        m95 = [r["m2e_ms_p95"] for r in lis if "m2e_ms_p95" in r]
        m2e50 = statistics.median(m50) if m50 else None
        m2e95 = statistics.median(m95) if m95 else None
        f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
        delta = None if cp is None or lp is None else lp - cp
        print(
            f"{clip:<8} {cond:<10} {f(cp):>10} {f(lp):>10} {f(delta):>6} {f(worst):>11} "
            f"{f(cs, 3):>10} {f(ls, 3):>10} {pieces:>6} {f(delay, 0):>6} "
            f"{f(m2e50, 0) + '/' + f(m2e95, 0):>11} "
            f"{'/'.join(str(u) for u in underruns) or '-':>12} {capture!s:>8}"
        )
        summary[f"{clip}/{cond}"] = dict(
            codec_pesq=cp, ruang_pesq=lp, delta=delta, worst_piece=worst,
            codec_stoi=cs, ruang_stoi=ls, pieces=pieces, m2e_ms_p50=m2e50, m2e_ms_p95=m2e95,
            underrun_samples=underruns,
            speaker_capture_overruns=capture, busy=busy,
        )
    print()
    print(
        "codec: the same input through Opus alone (client settings; lossN: N % of packets lost, "
        "Opus PLC only). Ruang: what the listeners played (median of listeners). Δ = Ruang − codec. "
        "worst piece: lowest PESQ of any piece of any listener. m2e: alignment lag found (median "
        "over 3 s pieces); m2e p50/p95: over 1 s speech windows, each aligned on its own. "
        "underrun smp: samples of silence each listener's device played because its ring was "
        "empty; capt ovr: samples the speaker's capture ring dropped."
    )
    json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
