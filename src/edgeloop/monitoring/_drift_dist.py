"""Null distributions of the drift tests, in numpy and the standard library (no scipy).

- :func:`kstwo_sf` — the two-sided one-sample Kolmogorov-Smirnov distribution ``P(D_n >= d)``,
  computed as scipy's ``stats.kstwo.sf`` does (Simard & L'Ecuyer's choice among Durbin's
  matrix method, Pomeranz's recursion, the Pelz-Good series and twice the one-sided
  Smirnov probability), which is what ``scipy.stats.ks_2samp(method="asymp")`` evaluates at
  ``n = round(n1 * n2 / (n1 + n2))``.
- :func:`smirnov_sf` — the one-sided ``P(D_n^+ >= d)`` (Birnbaum-Tingey sum, in logs).
- :func:`chi2_sf` — the chi-squared survival function, through :func:`gammaincc`, the
  regularised upper incomplete gamma function (series / Lentz continued fraction).
- :func:`normal_two_sided_p` — ``2 * (1 - Phi(|z|))``, via ``erfc``.

They agree with scipy to about 1e-12 (absolute, for p-values) on the tests' grids.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["chi2_sf", "gammaincc", "kstwo_sf", "normal_two_sided_p", "smirnov_sf"]

_SCALE_EXP = 128
_SCALE_UP = math.ldexp(1.0, _SCALE_EXP)
_SCALE_DOWN = math.ldexp(1.0, -_SCALE_EXP)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_LOG_2PI = math.log(2.0 * math.pi)
_PI2, _PI4, _PI6 = math.pi**2, math.pi**4, math.pi**6
_MIN_LOG = -708.0
_MINLOG_EXACT = -7.08396418532264106224e2  # cephes MINLOG: below it exp() underflows
_SMIRNOV_MAX_N = 1_000_000  # scipy switches to an approximation past it
# Bernoulli-number coefficients of Stirling's series, highest order first (as scipy uses them)
_STIRLING = (
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
)


def _clip(p: float) -> float:
    return min(1.0, max(0.0, float(p)))


def _log_factorial_over_power(n: int) -> float:
    """``log(n! / n**n)`` by Stirling's series, without forming ``n log n``."""
    rn = 1.0 / n
    poly = 0.0
    for c in _STIRLING:
        poly = poly * (rn / n) + c
    return math.log(n) / 2 - n + _LOG_2PI / 2 + rn * poly


# --------------------------------------------------------------------------- one-sided


def smirnov_sf(n: int, d: float) -> float:
    """``P(D_n^+ >= d)`` for the one-sided one-sample Kolmogorov-Smirnov statistic.

    The Birnbaum-Tingey sum ``d * sum_j C(n, j) (1 - d - j/n)^(n-j) (d + j/n)^(j-1)`` over
    ``j < n (1 - d)``; every term is positive, so it is summed from logarithms without
    cancellation. Special cases as in scipy's ``special.smirnov``.
    """
    if not (n > 0 and 0.0 <= d <= 1.0):
        return math.nan
    if n == 1:
        return 1.0 - d
    if d == 0.0:
        return 1.0
    if d == 1.0:
        return 0.0
    nx = n * d
    nxfl = math.floor(nx)
    if nxfl == 0 or (nxfl == 1 and nx == 1.0):  # d <= 1/n
        return _clip(1.0 - d * (1.0 + d) ** (n - 1))
    if -2.0 * n * d * d < _MINLOG_EXACT:
        return 0.0
    if nxfl >= n - 1:
        return _clip((1.0 - d) ** n)
    if n > _SMIRNOV_MAX_N:
        logp = -((6.0 * nx + 1.0) ** 2) / 18.0 / n
        return _clip(math.exp(logp) if logp < -math.log(2.0) else 1.0 + math.expm1(logp))
    j = np.arange(0, n - nxfl, dtype=np.float64)
    base_hi = (n - j) / n - d  # 1 - d - j/n
    keep = base_hi > 0
    j, base_hi = j[keep], base_hi[keep]
    log_binom = np.concatenate(([0.0], np.cumsum(np.log((n - j[:-1]) / (j[:-1] + 1.0)))))
    log_terms = log_binom + (n - j) * np.log(base_hi) + (j - 1.0) * np.log(d + j / n)
    top = float(log_terms.max())
    total = math.exp(top) * float(np.exp(log_terms - top).sum())
    return _clip(d * total)


# --------------------------------------------------------------------------- two-sided


def _kolmogn_dmtw(n: int, d: float) -> float:
    """``P(D_n <= d)`` by Durbin's matrix method (Marsaglia, Tsang & Wang's version)."""
    if d >= 1.0:
        return 1.0
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    idx = np.arange(1, m + 1)
    v = 1.0 - h**idx
    w = np.empty(m)
    fac = 1.0
    for j in range(1, m + 1):
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0.0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    mat = np.zeros((m, m))
    for i in range(1, m):
        mat[i - 1 :, i] = w[: m - i + 1]
    mat[:, 0] = v
    mat[-1, :] = v[::-1]

    power = np.eye(m)
    expnt, mat_expnt, nn = 0, 0, n
    while nn > 0:
        if nn % 2:
            power = power @ mat
            expnt += mat_expnt
        mat = mat @ mat
        mat_expnt *= 2
        if abs(mat[k - 1, k - 1]) > _SCALE_UP:
            mat /= _SCALE_UP
            mat_expnt += _SCALE_EXP
        nn //= 2
    p = float(power[k - 1, k - 1])
    if p <= 0.0:
        return 0.0
    # times n!/n^n, in logs (scipy multiplies i/n one at a time with rescaling)
    log_p = math.log(p) + expnt * math.log(2.0) + math.lgamma(n + 1) - n * math.log(n)
    return _clip(math.exp(log_p))


def _pomeranz_bounds(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        half, odd = divmod(i + 1, 2)
        if odd == 0:
            if half == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1
        else:
            j1, j2 = half - 1 - ll - 1, half + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _kolmogn_pomeranz(n: int, x: float) -> float:
    """``P(D_n <= x)`` by Pomeranz's recursion (small n)."""
    t = n * x
    ll = math.floor(t)
    f = t - ll
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower, twogpower, onem2gpower = np.empty(npwrs), np.empty(npwrs), np.empty(npwrs)
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * (g / n) / m
        twogpower[m] = twogpower[m - 1] * (2 * g / n) / m
        onem2gpower[m] = onem2gpower[m - 1] * ((1 - 2 * g) / n) / m
    v0, v1 = np.zeros(npwrs), np.zeros(npwrs)
    v1[0] = 1.0
    v0s = v1s = 0
    expnt = 0
    j1, _ = _pomeranz_bounds(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        v0, v1 = v1, v0
        v0s, v1s = v1s, v0s
        v1.fill(0.0)
        j1, j2 = _pomeranz_bounds(i, n, ll, ceilf, roundf)
        pwrs = gpower if i in (1, 2 * n + 1) else (twogpower if i % 2 else onem2gpower)
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(v0[k1 - v0s : k1 - v0s + ln2], pwrs[:ln2])
            start, length = j1 - k1, j2 - j1 + 1
            v1[:length] = conv[start : start + length]
            top = float(np.max(v1))
            if 0 < top < _SCALE_DOWN:
                v1 *= _SCALE_UP
                expnt -= _SCALE_EXP
            v1s = v0s + j1 - k1
    ans = float(v1[n - v1s])
    for m in range(1, n + 1):
        if abs(ans) > _SCALE_UP:
            ans *= _SCALE_DOWN
            expnt += _SCALE_EXP
        ans *= m
    if expnt:
        ans = math.ldexp(ans, expnt)
    return _clip(ans)


def _kolmogn_pelz_good(n: int, x: float) -> float:
    """``P(D_n <= x)`` by the Pelz-Good asymptotic series (large n)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = math.sqrt(n) * x
    z2, z3, z4, z6 = z**2, z**3, z**4, z**6
    qlog = -_PI2 / 8 / z2
    if qlog < _MIN_LOG:
        return 0.0
    q = math.exp(qlog)
    k1a, k1b = -z2, _PI2 / 4
    k2a = 6 * z6 + 2 * z4
    k2b = (2 * z4 - 5 * z2) * _PI2 / 4
    k2c = _PI4 * (1 - 2 * z2) / 16
    k3d = _PI6 * (5 - 30 * z2) / 64
    k3c = _PI4 * (-60 * z2 + 212 * z4) / 16
    k3b = _PI2 * (135 * z4 - 96 * z6) / 4
    k3a = -30 * z6 - 90 * z**8
    acc = np.zeros(4)
    maxk = math.ceil(16 * z / math.pi)
    for k in range(maxk, 0, -1):
        m = 2 * k - 1
        m2, m4, m6 = m**2, m**4, m**6
        acc *= q ** (8 * k)
        acc += (
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        )
    acc *= q * _SQRT2PI
    acc /= np.array([z, 6 * z4, 72 * z**7, 6480 * z**10])
    q = math.exp(-_PI2 / 2 / z2)
    ks = np.arange(maxk, 0, -1, dtype=np.float64)
    qk = q ** (ks**2)
    acc[2] += float(np.sum(ks**2 * qk)) * _PI2 * _SQRT2PI / (-36 * z3)
    s3z = math.sqrt(3.0) * z
    acc[3] += float(np.sum((s3z + math.pi * ks) * (s3z - math.pi * ks) * ks**2 * qk)) * (
        _PI2 * _SQRT2PI / (216 * z6)
    )
    acc /= np.power(float(n), np.arange(4) / 2.0)
    return float(acc.sum())


def kstwo_sf(d: float, n: int) -> float:
    """``P(D_n >= d)`` for the two-sided one-sample Kolmogorov-Smirnov statistic ``D_n``.

    The same algorithm choice as scipy's ``stats.kstwo.sf`` (Simard & L'Ecuyer, 2011).

    >>> round(kstwo_sf(0.05, 500), 6)
    0.158663
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    x = float(d)
    if math.isnan(x):
        return math.nan
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben-Gambino
        if t <= 0.5:
            return 1.0
        if n <= 140:
            prob = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            prob = math.exp(_log_factorial_over_power(n) + n * math.log(2 * t - 1))
        return _clip(1.0 - prob)
    if t >= n - 1:  # Ruben-Gambino
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:
        return _clip(2 * smirnov_sf(n, x))
    nx2 = t * x
    if n <= 140:
        if nx2 <= 0.754693:
            return _clip(1.0 - _kolmogn_dmtw(n, x))
        if nx2 <= 4:
            return _clip(1.0 - _kolmogn_pomeranz(n, x))
        return _clip(2 * smirnov_sf(n, x))
    if nx2 >= 370.0:
        return 0.0
    if nx2 >= 2.2:
        return _clip(2 * smirnov_sf(n, x))
    small = n <= 100_000 and n * x**1.5 <= 1.4
    return _clip(1.0 - (_kolmogn_dmtw(n, x) if small else _kolmogn_pelz_good(n, x)))


# --------------------------------------------------------------------------- chi-squared

_GAMMA_EPS = 1e-15
_GAMMA_TINY = 1e-300
_GAMMA_MAX_ITER = 100_000


def gammaincc(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function ``Q(a, x) = Γ(a, x) / Γ(a)``.

    The power series of ``P = 1 - Q`` below ``x = a + 1``, the modified-Lentz continued
    fraction of ``Q`` above it (so small tail probabilities keep their relative accuracy).
    """
    if not a > 0 or x < 0 or math.isnan(x):
        raise ValueError(f"gammaincc needs a > 0 and x >= 0, got a={a!r}, x={x!r}")
    if x == 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(_GAMMA_MAX_ITER):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _GAMMA_EPS:
                break
        return _clip(1.0 - total * math.exp(log_front))
    b = x + 1.0 - a
    c = 1.0 / _GAMMA_TINY
    dd = 1.0 / b
    h = dd
    for i in range(1, _GAMMA_MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        dd = an * dd + b
        if abs(dd) < _GAMMA_TINY:
            dd = _GAMMA_TINY
        c = b + an / c
        if abs(c) < _GAMMA_TINY:
            c = _GAMMA_TINY
        dd = 1.0 / dd
        delta = dd * c
        h *= delta
        if abs(delta - 1.0) < _GAMMA_EPS:
            break
    return _clip(math.exp(log_front) * h)


def chi2_sf(x: float, dof: int) -> float:
    """``P(X >= x)`` for a chi-squared variable with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    return gammaincc(dof / 2.0, x / 2.0)


def normal_two_sided_p(z: float) -> float:
    """``2 * (1 - Phi(|z|))`` for a standard normal ``Phi``."""
    if math.isnan(z):
        return math.nan
    return _clip(math.erfc(abs(z) / math.sqrt(2.0)))
