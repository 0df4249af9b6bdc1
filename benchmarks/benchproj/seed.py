"""Create and fill the SQLite database of the ``api`` scenario.

Usage: ``BENCH_DB=/path/to/file.sqlite3 python -m benchproj.seed [ROWS]``, or with
``BENCH_PG=host:port:user:dbname`` for an (empty) PostgreSQL database.
The rows are deterministic, so every run measures the same data.
"""

import os
import sys
from decimal import Decimal

ROWS_DEFAULT = 1000


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
    if not os.environ.get("BENCH_DB") and not os.environ.get("BENCH_PG"):
        print("BENCH_DB (or BENCH_PG) must name the database to fill", file=sys.stderr)
        return 2
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS_DEFAULT

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from benchproj.items.models import Item

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # Persistent for the file: every later connection uses WAL too.
            cursor.execute("PRAGMA journal_mode=WAL;")
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    Item.objects.bulk_create(
        (
            Item(
                name=f"seed-item-{i:05d}",
                description=f"Seeded item number {i}, used by the benchmark list and detail pages.",
                price=Decimal(i % 500) + Decimal("0.99"),
                quantity=i % 97,
                is_active=i % 3 != 0,
            )
            for i in range(1, rows + 1)
        ),
        batch_size=5000,
    )
    count = Item.objects.count()
    if count != rows:
        print(f"expected {rows} rows, found {count}", file=sys.stderr)
        return 1
    print(f"seeded {count} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
