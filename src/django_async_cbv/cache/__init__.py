"""``AsyncCacheMixin``: response caching as a request stage, with request coalescing.

The mixin is one request stage (:data:`~django_async_cbv.stages.CACHE`): after the
user, the rate limit and the access checks, before the circuit breaker and the
handler. A GET (or HEAD) is answered from the cache when an entry exists; otherwise
the handler runs once for all concurrent requests of one key, and its response is
stored when every storage rule allows it.

Stores: with django-redis or Django's ``RedisCache`` behind the alias, the stage
talks to Redis directly with redis-py's asyncio client; a hit is one script (the
view's generation, the URL's learned ``Vary`` names and the entry together). Other
backends go through Django's ``a*`` cache methods. Entries are bytes in a format of
this module (a JSON head and the body), never pickles.
"""

from __future__ import annotations

from django_async_cbv._util import StoreError as StoreError

from .entry import Entry as Entry
from .flow import LOCK_TIMEOUT as LOCK_TIMEOUT
from .headers import PER_REQUEST_HEADERS as PER_REQUEST_HEADERS
from .headers import SAFE_METHODS as SAFE_METHODS
from .headers import UNSAFE_METHODS as UNSAFE_METHODS
from .headers import X_CACHE as X_CACHE
from .mixin import CACHE_HEADER as CACHE_HEADER
from .mixin import AsyncCacheMixin
from .plan import digest as digest
from .store import DjangoStore as DjangoStore
from .store import Lookup as Lookup
from .store import RedisStore as RedisStore
from .store import Store as Store
from .store import store_for as store_for

__all__ = ["AsyncCacheMixin"]
