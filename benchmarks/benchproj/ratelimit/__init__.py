"""The hello view behind each rate limiter of the ``ratelimit`` scenario.

One module per variant, each a server's ROOT_URLCONF serving ``GET /hello/`` with
the body of the ``hello`` scenario (``{"message": "Hello, world!"}``). A limited
variant and its unlimited baseline differ only by the limiter:

==================  ==============================  ================================
framework           unlimited baseline              limited
==================  ==============================  ================================
django-async-cbv    ``benchproj.urls.hello_asyncview``  ``acbv_limited`` (AsyncRateLimitMixin)
DRF (sync APIView)  ``drf_plain``                   ``drf_throttled`` (AnonRateThrottle)
django-ninja async  ``ninja_plain``                 ``ninja_throttled`` (AnonRateThrottle)
django-ratelimit    ``dj_plain`` (sync function)    ``dj_ratelimit`` (``@ratelimit``)
==================  ==============================  ================================

Every limiter counts in the ``default`` cache (django-redis, see settings.py) and
keys by the client address, taken from the last ``X-Forwarded-For`` entry.
"""

import os

PAYLOAD = {"message": "Hello, world!"}

#: The limit of every limited variant, in each framework's own syntax.
RATE = os.environ.get("BENCH_RL_RATE", "100/m")
#: AsyncRateLimitMixin's algorithm.
ALGORITHM = os.environ.get("BENCH_RL_ALGORITHM", "sliding_window")


def drf_rate() -> str:
    """RATE spelled as DRF and ninja document it ("100/min")."""
    count, _, period = RATE.partition("/")
    words = {"s": "sec", "m": "min", "h": "hour", "d": "day"}
    return f"{count}/{words.get(period, period)}"


def client_ip(request) -> str:
    """django-ratelimit's RATELIMIT_IP_META_KEY: the last X-Forwarded-For entry.

    What NUM_PROXIES = 1 means for the other frameworks; REMOTE_ADDR without the header.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return request.META["REMOTE_ADDR"]
