#!/usr/bin/env python3
"""Scores what listeners played against what the speaker said: wide-band PESQ (ITU-T P.862.2,
the `pesq` package) and STOI (`pystoi`), per 3 s piece, each piece aligned on its own.

Usage: score.py REF.wav DEG.wav [DEG.wav ...]  -> one JSON object per line on stdout:
  {"ref": ..., "deg": ..., "pieces": N, "pesq_median": x, "pesq_p10": x, "pesq_min": x,
   "stoi_median": x, "delay_ms_median": x, "m2e_ms_p50": x, "m2e_ms_p95": x, "m2e_windows": N}

REF and DEG are 48 kHz mono WAVs that start at the same instant of the speaker's clock (DEG
may lag REF by up to MAX_LAG_MS and be longer). Both are resampled to 16 kHz (polyphase),
cut into PIECE_S pieces of REF; for each piece the lag that maximises the normalised
cross-correlation with DEG is found, and PESQ-WB and STOI are computed on that piece.
Pieces where REF is nearly silent (PESQ finds no utterance) are skipped.

Mouth-to-ear on the speech itself (no probe signal added): REF is also cut into M2E_WINDOW_S
windows; each window with speech in it (RMS above M2E_MIN_RMS) is aligned the same way, and
its lag counts when the match is unambiguous (normalised correlation at least M2E_MIN_CORR).
The lags' p50 and p95 are the delay a listener hears, talk spurts and pauses included.
"""
import json
import sys
import wave

import numpy as np
from pesq import pesq, PesqError
from pystoi import stoi
from scipy.signal import resample_poly, fftconvolve

FS = 16000
PIECE_S = 3.0
MAX_LAG_MS = 400
M2E_WINDOW_S = 1.0
M2E_MIN_RMS = 10 ** (-40 / 20)
M2E_MIN_CORR = 0.8


def read(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, path
        rate = w.getframerate()
        ch = w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    x /= 32768.0
    if rate != FS:
        from math import gcd
        g = gcd(rate, FS)
        x = resample_poly(x, FS // g, rate // g)
    return x


def best_lag(ref, deg, max_lag, with_corr=False):
    """Lag in 0..=max_lag (samples) where deg[lag:lag+len(ref)] best matches ref (and, with
    `with_corr`, the normalised correlation there, 0..1)."""
    seg = deg[: len(ref) + max_lag]
    if len(seg) < len(ref):
        return (None, 0.0) if with_corr else None
    corr = fftconvolve(seg, ref[::-1], mode="valid")  # corr[k] = sum ref * seg[k:k+len]
    energy = np.convolve(seg * seg, np.ones(len(ref)), mode="valid")
    n = min(len(corr), len(energy), max_lag + 1)
    score = corr[:n] / np.sqrt(np.maximum(energy[:n], 1e-12))
    lag = int(np.argmax(score))
    if not with_corr:
        return lag
    norm = float(score[lag]) / max(float(np.sqrt(np.sum(ref * ref))), 1e-12)
    return lag, norm


def m2e_lags(ref, deg, max_lag):
    """Per speech window of REF, the lag (ms) at which DEG plays it, where unambiguous."""
    window = int(M2E_WINDOW_S * FS)
    lags = []
    for start in range(0, len(ref) - window + 1, window):
        r = ref[start : start + window]
        if np.sqrt(np.mean(r * r)) < M2E_MIN_RMS:
            continue
        lag, corr = best_lag(r, deg[start:], max_lag, with_corr=True)
        if lag is not None and corr >= M2E_MIN_CORR:
            lags.append(lag * 1000.0 / FS)
    return lags


def score(ref_path, deg_path):
    ref = read(ref_path)
    deg = read(deg_path)
    piece = int(PIECE_S * FS)
    max_lag = MAX_LAG_MS * FS // 1000
    pesqs, stois, lags = [], [], []
    for start in range(0, len(ref) - piece + 1, piece):
        r = ref[start : start + piece]
        if np.sqrt(np.mean(r * r)) < 1e-3:  # below -60 dBFS: a pause, nothing to score
            continue
        lag = best_lag(r, deg[start:], max_lag)
        if lag is None:
            continue
        d = deg[start + lag : start + lag + piece]
        if len(d) < piece:
            continue
        p = pesq(FS, r, d, "wb", on_error=PesqError.RETURN_VALUES)
        if p < 0:
            continue
        pesqs.append(p)
        stois.append(stoi(r, d, FS, extended=False))
        lags.append(lag * 1000.0 / FS)
    out = {"ref": ref_path, "deg": deg_path, "pieces": len(pesqs)}
    m2e = m2e_lags(ref, deg, max_lag)
    if m2e:
        out.update(
            m2e_ms_p50=float(np.percentile(m2e, 50)),
            m2e_ms_p95=float(np.percentile(m2e, 95)),
            m2e_windows=len(m2e),
        )
    if pesqs:
        out.update(
            pesq_median=float(np.median(pesqs)),
            pesq_p10=float(np.percentile(pesqs, 10)),
            pesq_min=float(np.min(pesqs)),
            stoi_median=float(np.median(stois)),
            delay_ms_median=float(np.median(lags)),
            pesq=[round(float(p), 3) for p in pesqs],
        )
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    ref = sys.argv[1]
    for deg in sys.argv[2:]:
        print(json.dumps(score(ref, deg)), flush=True)


if __name__ == "__main__":
    main()
