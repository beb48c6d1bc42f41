"""How strongly the Kaplan-Meier median of a small arm moves with its Kaplan-Meier curve:
the simulation behind the median's loading in the joint survival likelihood
(hccmeta.models.survival.terms).

Exponential arms (median 10 months) of n = 12, 22, 50, 200 without censoring, 40 000
each: the correlation of ln M_KM with ln S_KM(t) at t = 6, 10 (the median), 12 and 24
months, against the Bahadur representation alone (``V(min(M, t)) / sqrt(V(M) V(t))``)
and with Kiefer's remainder (times ``1 / sqrt(1 + 1.596 / sqrt(n))``, what the model
uses), and the variance of ln M_KM times ``n ln(2)^2`` (1 for the Kaplan-Meier variance
the effects layer assumes).

Run from the repository root (a few seconds):
    python validation/survival/km_correlations.py
It writes km_correlations.csv here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hccmeta.models.survival.terms import KIEFER

HERE = Path(__file__).resolve().parent
SEED = 20260401
LN2 = math.log(2.0)
MEDIAN = 10.0
REPLICATES = 40_000


def main() -> None:
    rng = np.random.default_rng(SEED)
    rate = LN2 / MEDIAN
    rows = []
    for n in (12, 22, 50, 200):
        t = rng.exponential(1.0 / rate, size=(REPLICATES, n))
        # without censoring the KM median is the order statistic ceil(n / 2)
        log_median = np.log(np.sort(t, axis=1)[:, math.ceil(n / 2) - 1])
        for time in (6.0, MEDIAN, 12.0, 24.0):
            surv = (t > time).mean(axis=1)
            ok = surv > 0
            emp = float(np.corrcoef(log_median[ok], np.log(surv[ok]))[0, 1])
            v_t, v_m = math.expm1(rate * time) / n, 1.0 / n
            bahadur = min(v_t, v_m) / math.sqrt(v_t * v_m)
            rows.append(
                {
                    "n": n,
                    "time": time,
                    "corr_simulated": round(emp, 3),
                    "corr_bahadur": round(bahadur, 3),
                    "corr_bahadur_kiefer": round(bahadur / math.sqrt(1 + KIEFER / math.sqrt(n)), 3),
                    "var_ln_median_x_n_ln2sq": round(float(log_median.var()) * n * LN2**2, 3),
                    "replicates": REPLICATES,
                }
            )
    out = pd.DataFrame(rows)
    out.to_csv(HERE / "km_correlations.csv", index=False)
    print(out.to_string(index=False))


if __name__ == "__main__":
    main()
