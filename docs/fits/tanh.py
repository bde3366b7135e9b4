#!/usr/bin/env python3
"""Fits the rational tanh of src/engine/fastmath.rs: tanh(x) ~ x*(1 + t*P(t)) / Q(t), t = x^2,
P of degree 3 and Q of degree 4 with Q(0) = 1, minimising the largest relative error on
[0, 9.02] (past 9.02 tanh rounds to 1 in f32). Lawson's iteratively reweighted least squares on
the linearised residual P - g*Q (g = tanh(x)/x), in f64 with numpy.

The printed coefficients are rounded to f32; `fastmath::tanh` then clamps |x| at the first value
where its f32 evaluation reaches 1 (found by scanning every f32 above 8), and the ignored test
`tanh_every_f32_within_5_ulps` checks the stated bound over every f32 in [0, 10]:
    python3 docs/fits/tanh.py
    cargo test --release --lib -- --ignored tanh_every
"""
import math

import numpy as np

NP, NQ, C = 4, 4, 9.02  # coefficients of 1 + a1 s + ... (P side) and of Q, domain [0, C]
S = C * C
n = 6000
s = np.sort(np.concatenate([(np.cos(np.pi * (np.arange(n) + 0.5) / n) + 1) / 2, np.linspace(0, 1, n)]))
x = np.sqrt(s * S)
g = np.array([math.tanh(v) / v if v > 0 else 1.0 for v in x])
# Unknowns: a1..a4 of P = 1 + sum a_i s^i and b1..b4 of Q = 1 + sum b_j s^j (s = t / S).
A = np.hstack([np.stack([s**i for i in range(1, NP + 1)], 1), -g[:, None] * np.stack([s**j for j in range(1, NQ + 1)], 1)])
w, q_prev, best = np.full(len(s), 1.0 / len(s)), np.ones(len(s)), None
for _ in range(400):
    sw = np.sqrt(w) / (g * q_prev)
    c = np.linalg.lstsq(A * sw[:, None], (g - 1.0) * sw, rcond=None)[0]
    p = 1 + sum(c[i - 1] * s**i for i in range(1, NP + 1))
    q = 1 + sum(c[NP + j - 1] * s**j for j in range(1, NQ + 1))
    r = (p / q - g) / g
    if best is None or abs(r).max() < best[0]:
        best = (abs(r).max(), c.copy())
    w = w * abs(r)
    w /= w.sum()
    q_prev = q
err, c = best
print(f"largest relative error of the f64 fit: {err:.3e} ({err / 2**-24:.2f} ulp of 2^-24)")
print("P (t^0 first, multiplies x^3):", [np.format_float_scientific(np.float32(c[i - 1] / S**i), unique=True) for i in range(1, NP + 1)])
print("Q (t^1 first, after 1):      ", [np.format_float_scientific(np.float32(c[NP + j - 1] / S**j), unique=True) for j in range(1, NQ + 1)])
