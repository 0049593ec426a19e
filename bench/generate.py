"""The bench's data, generated once per scale and cached under .local/bench/data/scale-<s>/.

Scale 1 is about 1 GB of PostgreSQL (four tables: narrow events and orders, a
customers table, wide articles with TOASTed bodies, a jsonb column, two
secondary indexes), 1,000,000 Elasticsearch documents in three indices (about
1 GB of source: text, keywords, dates, numbers, objects and nested fields) and
10,000 objects of about 1 GB (many small, about a hundred of a few MB, three
over 100 MB; images and archives incompressible, text and CSV compressible).
Any other scale has the same shape with every count and size multiplied.

Everything comes from a seeded generator, so a scale's files are the same on
every machine. Each part is written under a temporary name and marked complete
with the counts the loader checks; a complete part is never regenerated.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT / ".local" / "bench" / "data"
GENERATOR_VERSION = 1  # bump when the data's shape changes: cached data of another version is regenerated

# --- sizes at scale 1 ---------------------------------------------------------------------------

PG_ROWS = {"customers": 200_000, "orders": 3_000_000, "events": 5_000_000, "articles": 150_000}
ES_DOCS = {"products": 100_000, "logs-2026.11": 700_000, "customers": 200_000}  # indices <prefix>-<name>
S3_OBJECTS = 10_000
S3_LARGE = [
    ("media/video/launch-keynote-2026.mp4", 150, "video/mp4", "random"),
    ("exports/events-2026-10.csv", 120, "text/csv", "csv"),
    ("archives/site-snapshot-2026-11.tar.gz", 110, "application/gzip", "random"),
]  # sizes in MB
S3_MEDIUM = 100  # 1 to 5 MB each
S3_TOTAL_MB = 1000


def scale_name(scale: float) -> str:
    return f"scale-{scale:g}"


def data_dir(scale: float) -> Path:
    return DATA_ROOT / scale_name(scale)


def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(n * scale))


# --- text -----------------------------------------------------------------------------------------

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "more",
    "out",
    "up",
    "into",
    "do",
    "any",
    "your",
    "what",
    "about",
    "than",
    "them",
    "can",
    "only",
    "other",
    "time",
    "new",
    "some",
    "could",
    "these",
    "two",
    "may",
    "first",
    "then",
    "people",
    "our",
    "over",
    "also",
    "after",
    "like",
    "well",
    "back",
    "year",
    "work",
    "data",
    "system",
    "order",
    "customer",
    "product",
    "service",
    "report",
    "team",
    "account",
    "price",
    "market",
    "value",
    "payment",
    "delivery",
    "update",
    "release",
    "support",
    "network",
    "storage",
    "backup",
    "index",
    "search",
    "query",
    "record",
    "event",
    "request",
    "response",
    "server",
    "client",
    "user",
    "admin",
    "invoice",
    "shipment",
    "warehouse",
    "inventory",
    "supplier",
    "contract",
    "quality",
    "design",
    "feature",
    "review",
    "issue",
    "change",
    "version",
    "build",
    "test",
    "deploy",
    "cluster",
    "region",
    "zone",
    "traffic",
    "latency",
    "error",
    "warning",
    "status",
    "health",
    "metric",
    "alert",
    "dashboard",
    "schedule",
    "window",
    "policy",
    "retention",
    "archive",
    "snapshot",
    "restore",
    "analysis",
    "revenue",
    "growth",
    "quarter",
    "budget",
    "forecast",
    "campaign",
    "channel",
    "partner",
    "subscription",
    "renewal",
    "discount",
    "coupon",
    "cart",
    "checkout",
    "refund",
    "return",
    "stock",
    "catalog",
    "category",
    "brand",
    "model",
    "color",
    "size",
    "weight",
    "material",
    "shipping",
    "address",
    "city",
    "country",
    "street",
    "postal",
    "phone",
    "email",
    "message",
    "comment",
    "rating",
    "profile",
    "preference",
    "language",
    "currency",
    "amount",
    "total",
    "balance",
    "credit",
    "debit",
    "transfer",
    "bank",
    "card",
    "session",
    "token",
    "login",
    "password",
    "permission",
    "role",
    "group",
    "project",
    "task",
    "milestone",
    "deadline",
    "meeting",
    "note",
    "document",
    "file",
    "folder",
    "image",
    "video",
    "audio",
    "page",
    "link",
    "site",
    "content",
    "article",
    "story",
    "headline",
    "author",
    "editor",
    "draft",
    "publish",
    "comment",
    "reader",
    "audience",
    "topic",
    "trend",
    "insight",
    "quickly",
    "carefully",
    "often",
    "rarely",
    "usually",
    "already",
    "still",
    "again",
    "never",
    "always",
    "together",
    "almost",
    "around",
    "between",
    "during",
    "without",
    "within",
    "against",
    "among",
    "through",
    "across",
    "behind",
    "beyond",
    "under",
    "above",
    "below",
    "near",
    "far",
    "large",
    "small",
    "good",
    "great",
    "high",
    "low",
    "long",
    "short",
    "early",
    "late",
    "recent",
    "current",
    "previous",
    "next",
    "final",
    "main",
    "major",
    "minor",
    "simple",
    "complex",
    "public",
    "private",
    "local",
    "global",
    "open",
    "closed",
    "active",
    "pending",
    "failed",
    "ready",
    "stable",
    "secure",
    "fast",
    "slow",
    "new",
    "old",
    "free",
    "busy",
    "full",
    "empty",
    "green",
    "blue",
    "red",
    "black",
    "white",
    "silver",
    "golden",
    "bright",
    "dark",
    "warm",
    "cold",
    "fresh",
    "clean",
]

SURNAMES = [
    "Smith",
    "Johnson",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Schmidt",
    "Muller",
    "Weber",
    "Fischer",
    "Dubois",
    "Moreau",
    "Rossi",
    "Russo",
    "Ferrari",
    "Kowalski",
    "Novak",
    "Silva",
    "Santos",
    "Tanaka",
    "Suzuki",
    "Sato",
    "Kim",
    "Park",
    "Chen",
    "Wang",
    "Li",
    "Zhang",
    "Singh",
    "Kumar",
    "Patel",
    "Okafor",
    "Mensah",
]
GIVEN = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Paul",
    "Ashley",
    "Steven",
    "Emily",
    "Andrew",
    "Donna",
    "Kenneth",
    "Michelle",
    "Joshua",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "Lena",
    "Jonas",
    "Sofia",
    "Luca",
    "Marta",
    "Piotr",
    "Ana",
    "Joao",
    "Yuki",
    "Hana",
    "Min",
    "Wei",
    "Priya",
    "Arjun",
    "Chidi",
    "Ama",
    "Olga",
    "Ivan",
    "Elif",
    "Omar",
]
CITIES = [
    "Berlin",
    "Paris",
    "Madrid",
    "Rome",
    "Lisbon",
    "Warsaw",
    "Prague",
    "Vienna",
    "Amsterdam",
    "Brussels",
    "Dublin",
    "London",
    "Oslo",
    "Stockholm",
    "Helsinki",
    "Copenhagen",
    "Athens",
    "Istanbul",
    "Cairo",
    "Lagos",
    "Nairobi",
    "Tokyo",
    "Osaka",
    "Seoul",
    "Beijing",
    "Shanghai",
    "Mumbai",
    "Delhi",
    "Sydney",
    "Toronto",
    "Chicago",
    "Denver",
    "Austin",
    "Boston",
    "Seattle",
    "Lima",
    "Bogota",
    "Santiago",
]
COUNTRIES = [
    "DE",
    "FR",
    "ES",
    "IT",
    "PT",
    "PL",
    "CZ",
    "AT",
    "NL",
    "BE",
    "IE",
    "GB",
    "NO",
    "SE",
    "FI",
    "DK",
    "GR",
    "TR",
    "EG",
    "NG",
    "KE",
    "JP",
    "KR",
    "CN",
    "IN",
    "AU",
    "CA",
    "US",
    "PE",
    "CO",
    "CL",
]
COLORS = [
    "black",
    "white",
    "red",
    "blue",
    "green",
    "yellow",
    "grey",
    "silver",
    "navy",
    "olive",
    "beige",
    "brown",
    "pink",
    "purple",
    "orange",
]
SIZES = ["XS", "S", "M", "L", "XL", "XXL", "36", "38", "40", "42", "44", "one-size"]
SERVICES = [
    "api",
    "web",
    "checkout",
    "search",
    "billing",
    "auth",
    "inventory",
    "shipping",
    "mailer",
    "scheduler",
    "gateway",
    "reports",
]
LEVELS = ["INFO"] * 16 + ["DEBUG"] * 6 + ["WARN"] * 3 + ["ERROR"]
PATHS = [
    "/api/v1/orders",
    "/api/v1/products",
    "/api/v1/customers",
    "/api/v2/search",
    "/checkout",
    "/cart",
    "/login",
    "/logout",
    "/static/app.js",
    "/static/app.css",
    "/health",
    "/api/v1/invoices",
    "/api/v1/shipments",
    "/account/settings",
]
METHODS = ["GET"] * 12 + ["POST"] * 4 + ["PUT", "DELETE", "PATCH"]
STATUSES = [200] * 40 + [201] * 4 + [204] * 3 + [301, 302, 304, 304] + [400, 401, 403] + [404] * 3 + [500, 502, 503]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.11.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
]
STATUS_NAMES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]


class Text:
    """Sentences of Zipf-distributed words, drawn from a pool so text is cheap to make yet reads like prose
    to a compressor (it compresses about as well as English)."""

    def __init__(self, rng: random.Random, pool: int = 40_000):
        weights = [1.0 / (rank + 8) for rank in range(len(WORDS))]
        cum, total = [], 0.0
        for w in weights:
            total += w
            cum.append(total)
        sentences = []
        for _ in range(pool):
            words = rng.choices(WORDS, cum_weights=cum, k=rng.randint(6, 18))
            sentences.append(" ".join(words).capitalize() + rng.choice((".", ".", ".", "!", "?")))
        self.pool = sentences
        self.rng = rng

    def sentences(self, n: int) -> str:
        return " ".join(self.rng.choices(self.pool, k=n))

    def words(self, n: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=n))

    def block(self, size: int) -> bytes:
        """About `size` bytes of paragraphs."""
        parts, have = [], 0
        while have < size:
            para = self.sentences(self.rng.randint(3, 9)) + "\n\n"
            parts.append(para)
            have += len(para)
        return "".join(parts).encode()[:size]


def _ts(rng: random.Random, month: int = 11) -> str:
    return (
        f"2026-{month:02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    )


def _pg_ts(rng: random.Random) -> str:
    return (
        f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}+00"
    )


def _name(rng: random.Random) -> str:
    return f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)}"


# --- completion markers -----------------------------------------------------------------------------


def marker(part_dir: Path) -> dict | None:
    try:
        found = json.loads((part_dir / ".complete").read_text())
    except (OSError, ValueError):
        return None
    return found if found.get("generator_version") == GENERATOR_VERSION else None


def _finish(tmp: Path, final: Path, info: dict) -> dict:
    info = {"generator_version": GENERATOR_VERSION, **info}
    (tmp / ".complete").write_text(json.dumps(info, indent=2))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return info


def _fresh(path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


# --- PostgreSQL -------------------------------------------------------------------------------------

PG_SCHEMA = """
CREATE TABLE customers (
    id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, country char(2) NOT NULL, city text,
    created_at timestamptz NOT NULL, is_active boolean NOT NULL, credit_limit numeric(12,2));
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, total numeric(12,2) NOT NULL,
    currency char(3) NOT NULL, created_at timestamptz NOT NULL, shipped_at timestamptz);
CREATE TABLE events (
    id bigint PRIMARY KEY, at timestamptz NOT NULL, kind smallint NOT NULL, actor_id integer NOT NULL,
    value double precision);
CREATE TABLE articles (
    id integer PRIMARY KEY, slug text NOT NULL, title text NOT NULL, body text NOT NULL, tags text[] NOT NULL,
    attributes jsonb NOT NULL, published_at timestamptz NOT NULL);
"""
PG_INDEXES = """
CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE INDEX articles_published_at ON articles (published_at);
"""
PG_TABLES = ("customers", "orders", "events", "articles")


def _pg_rows(table: str, n: int, rng: random.Random, text: Text, customers: int):
    if table == "customers":
        for i in range(1, n + 1):
            name = _name(rng)
            yield (
                f"{i}\t{name}\t{name.lower().replace(' ', '.')}{i}@example.com\t{rng.choice(COUNTRIES)}\t"
                f"{rng.choice(CITIES)}\t{_pg_ts(rng)}\t{'t' if rng.random() < 0.9 else 'f'}\t"
                f"{rng.randint(0, 5_000_000) / 100:.2f}\n"
            )
    elif table == "orders":
        for i in range(1, n + 1):
            status = rng.choice(STATUS_NAMES)
            shipped = _pg_ts(rng) if status in ("shipped", "delivered") else "\\N"
            yield (
                f"{i}\t{rng.randint(1, customers)}\t{status}\t{rng.randint(100, 250_000) / 100:.2f}\t"
                f"{rng.choice(('EUR', 'USD', 'GBP'))}\t{_pg_ts(rng)}\t{shipped}\n"
            )
    elif table == "events":
        for i in range(1, n + 1):
            yield f"{i}\t{_pg_ts(rng)}\t{rng.randint(1, 40)}\t{rng.randint(1, 2_000_000)}\t{rng.random() * 1000:.6f}\n"
    elif table == "articles":
        for i in range(1, n + 1):
            title = text.words(rng.randint(4, 10)).capitalize()
            body = "\\n\\n".join(text.sentences(rng.randint(4, 8)) for _ in range(rng.randint(5, 11)))
            tags = ",".join(rng.sample(WORDS, rng.randint(1, 5)))
            attrs = orjson.dumps(
                {
                    "author": _name(rng),
                    "words": len(body) // 6,
                    "lang": rng.choice(("en", "de", "fr")),
                    "featured": rng.random() < 0.1,
                    "score": round(rng.random() * 5, 2),
                    "sections": [text.words(2) for _ in range(rng.randint(1, 4))],
                }
            ).decode()
            yield (
                f"{i}\t{title.lower().replace(' ', '-')[:60]}-{i}\t{title}\t{body}\t{{{tags}}}\t{attrs}\t"
                f"{_pg_ts(rng)}\n"
            )


def generate_postgres(scale: float, out: Path) -> dict:
    tmp = _fresh(out)
    rng = random.Random(f"pg-{scale}")
    text = Text(rng)
    rows = {t: scaled(n, scale) for t, n in PG_ROWS.items()}
    sizes = {}
    for table in PG_TABLES:
        path = tmp / f"{table}.copy"
        with open(path, "w", buffering=4 * 1024 * 1024) as f:
            batch = []
            for line in _pg_rows(table, rows[table], rng, text, rows["customers"]):
                batch.append(line)
                if len(batch) >= 20_000:
                    f.write("".join(batch))
                    batch.clear()
            f.write("".join(batch))
        sizes[table] = path.stat().st_size
    (tmp / "schema.sql").write_text(PG_SCHEMA)
    (tmp / "indexes.sql").write_text(PG_INDEXES)
    return _finish(tmp, out, {"rows": rows, "bytes": sizes})


# --- Elasticsearch ----------------------------------------------------------------------------------

ES_MAPPINGS = {
    "products": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "properties": {
                "sku": {"type": "keyword"},
                "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "description": {"type": "text"},
                "brand": {"type": "keyword"},
                "price": {"type": "double"},
                "currency": {"type": "keyword"},
                "categories": {"type": "keyword"},
                "tags": {"type": "keyword"},
                "rating": {"type": "float"},
                "in_stock": {"type": "boolean"},
                "created_at": {"type": "date"},
                "variants": {
                    "type": "nested",
                    "properties": {
                        "sku": {"type": "keyword"},
                        "color": {"type": "keyword"},
                        "size": {"type": "keyword"},
                        "price": {"type": "double"},
                        "stock": {"type": "integer"},
                    },
                },
                "attributes": {
                    "properties": {
                        "material": {"type": "keyword"},
                        "weight_g": {"type": "integer"},
                        "dimensions": {
                            "properties": {"w": {"type": "float"}, "h": {"type": "float"}, "d": {"type": "float"}}
                        },
                    }
                },
                "reviews": {
                    "type": "nested",
                    "properties": {
                        "author": {"type": "keyword"},
                        "stars": {"type": "byte"},
                        "text": {"type": "text"},
                        "at": {"type": "date"},
                    },
                },
            }
        },
    },
    "logs-2026.11": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "properties": {
                "@timestamp": {"type": "date"},
                "level": {"type": "keyword"},
                "service": {"type": "keyword"},
                "host": {"type": "keyword"},
                "message": {"type": "text"},
                "trace_id": {"type": "keyword"},
                "http": {
                    "properties": {
                        "method": {"type": "keyword"},
                        "path": {"type": "keyword"},
                        "status": {"type": "short"},
                        "bytes": {"type": "long"},
                        "duration_ms": {"type": "float"},
                    }
                },
                "user": {
                    "properties": {
                        "id": {"type": "keyword"},
                        "ip": {"type": "ip"},
                        "agent": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
                    }
                },
                "labels": {"type": "object", "dynamic": True},
                "tags": {"type": "keyword"},
            }
        },
    },
    "customers": {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "properties": {
                "customer_id": {"type": "keyword"},
                "name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "email": {"type": "keyword"},
                "bio": {"type": "text"},
                "signup_date": {"type": "date"},
                "tier": {"type": "keyword"},
                "lifetime_value": {"type": "double"},
                "addresses": {
                    "type": "nested",
                    "properties": {
                        "type": {"type": "keyword"},
                        "street": {"type": "text"},
                        "city": {"type": "keyword"},
                        "postal_code": {"type": "keyword"},
                        "country": {"type": "keyword"},
                    },
                },
                "orders": {
                    "type": "nested",
                    "properties": {
                        "order_id": {"type": "keyword"},
                        "date": {"type": "date"},
                        "total": {"type": "double"},
                        "items": {"properties": {"sku": {"type": "keyword"}, "qty": {"type": "integer"}}},
                    },
                },
                "preferences": {
                    "properties": {
                        "newsletter": {"type": "boolean"},
                        "language": {"type": "keyword"},
                        "channels": {"type": "keyword"},
                    }
                },
            }
        },
    },
}


def _es_doc(index: str, i: int, rng: random.Random, text: Text) -> tuple[str, dict]:
    if index == "products":
        sku = f"SKU-{i:08d}"
        return sku, {
            "sku": sku,
            "name": text.words(rng.randint(2, 6)).title(),
            "description": text.sentences(rng.randint(6, 14)),
            "brand": rng.choice(SURNAMES) + " " + rng.choice(("Labs", "Works", "Co", "Goods", "Studio")),
            "price": rng.randint(199, 99_999) / 100,
            "currency": "EUR",
            "categories": rng.sample(WORDS[120:220], rng.randint(1, 3)),
            "tags": rng.sample(WORDS, rng.randint(0, 5)),
            "rating": round(rng.uniform(1, 5), 1),
            "in_stock": rng.random() < 0.8,
            "created_at": _ts(rng, rng.randint(1, 11)),
            "variants": [
                {
                    "sku": f"{sku}-{v}",
                    "color": rng.choice(COLORS),
                    "size": rng.choice(SIZES),
                    "price": rng.randint(199, 99_999) / 100,
                    "stock": rng.randint(0, 500),
                }
                for v in range(rng.randint(1, 6))
            ],
            "attributes": {
                "material": rng.choice(("cotton", "steel", "oak", "glass", "leather", "plastic")),
                "weight_g": rng.randint(10, 20_000),
                "dimensions": {
                    "w": round(rng.uniform(1, 200), 1),
                    "h": round(rng.uniform(1, 200), 1),
                    "d": round(rng.uniform(1, 200), 1),
                },
            },
            "reviews": [
                {
                    "author": _name(rng),
                    "stars": rng.randint(1, 5),
                    "text": text.sentences(rng.randint(1, 2)),
                    "at": _ts(rng),
                }
                for _ in range(rng.randint(0, 3))
            ],
        }
    if index == "logs-2026.11":
        status = rng.choice(STATUSES)
        return f"log-{i:09d}", {
            "@timestamp": _ts(rng),
            "level": rng.choice(LEVELS),
            "service": rng.choice(SERVICES),
            "host": f"node-{rng.randint(1, 24):02d}.prod.internal",
            "message": text.sentences(rng.randint(2, 7)),
            "trace_id": f"{rng.getrandbits(64):016x}{rng.getrandbits(64):016x}",
            "http": {
                "method": rng.choice(METHODS),
                "path": rng.choice(PATHS),
                "status": status,
                "bytes": rng.randint(0, 500_000),
                "duration_ms": round(rng.expovariate(1 / 80), 2),
            },
            "user": {
                "id": f"u{rng.randint(1, 200_000)}",
                "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "agent": rng.choice(AGENTS),
            },
            "labels": {
                "env": "prod",
                "region": rng.choice(("eu-west", "eu-central", "us-east")),
                "release": f"2026.11.{rng.randint(1, 9)}",
            },
            "tags": rng.sample(("http", "slow", "retry", "cache-miss", "auth", "db"), rng.randint(0, 2)),
        }
    name = _name(rng)
    return f"cust-{i:08d}", {
        "customer_id": f"C{i:08d}",
        "name": name,
        "email": f"{name.lower().replace(' ', '.')}{i}@example.com",
        "bio": text.sentences(rng.randint(4, 11)),
        "signup_date": _ts(rng, rng.randint(1, 11)),
        "tier": rng.choice(("free", "free", "silver", "gold", "platinum")),
        "lifetime_value": rng.randint(0, 2_000_000) / 100,
        "addresses": [
            {
                "type": t,
                "street": f"{rng.randint(1, 300)} {text.words(2).title()} Street",
                "city": rng.choice(CITIES),
                "postal_code": f"{rng.randint(10000, 99999)}",
                "country": rng.choice(COUNTRIES),
            }
            for t in rng.sample(("home", "work", "billing"), rng.randint(1, 3))
        ],
        "orders": [
            {
                "order_id": f"O{rng.randint(1, 10**8):09d}",
                "date": _ts(rng, rng.randint(1, 11)),
                "total": rng.randint(100, 250_000) / 100,
                "items": [
                    {"sku": f"SKU-{rng.randint(1, 100_000):08d}", "qty": rng.randint(1, 4)}
                    for _ in range(rng.randint(1, 4))
                ],
            }
            for _ in range(rng.randint(0, 6))
        ],
        "preferences": {
            "newsletter": rng.random() < 0.4,
            "language": rng.choice(("en", "de", "fr", "es", "ja")),
            "channels": rng.sample(("email", "sms", "push"), rng.randint(0, 3)),
        },
    }


def generate_elasticsearch(scale: float, out: Path) -> dict:
    """One bulk-ready file per index (action line, source line) and the index definitions."""
    tmp = _fresh(out)
    rng = random.Random(f"es-{scale}")
    text = Text(rng)
    docs, sizes = {}, {}
    for index, n_docs in ES_DOCS.items():
        n = scaled(n_docs, scale)
        source_bytes = 0
        with open(tmp / f"{index}.bulk", "wb", buffering=4 * 1024 * 1024) as f:
            batch = []
            for i in range(1, n + 1):
                doc_id, source = _es_doc(index, i, rng, text)
                body = orjson.dumps(source)
                source_bytes += len(body)
                batch.append(b'{"index":{"_id":"' + doc_id.encode() + b'"}}\n' + body + b"\n")
                if len(batch) >= 5000:
                    f.write(b"".join(batch))
                    batch.clear()
            f.write(b"".join(batch))
        docs[index], sizes[index] = n, source_bytes
    (tmp / "indices.json").write_text(json.dumps(ES_MAPPINGS, indent=2))
    return _finish(tmp, out, {"docs": docs, "source_bytes": sizes})


# --- object storage ---------------------------------------------------------------------------------

SMALL_KINDS = [  # (weight, prefix, extension, content type, content)
    (30, "uploads/images", "jpg", "image/jpeg", "random"),
    (12, "uploads/images", "png", "image/png", "random"),
    (14, "documents", "json", "application/json", "json"),
    (10, "documents", "txt", "text/plain", "text"),
    (8, "exports", "csv", "text/csv", "csv"),
    (8, "site", "html", "text/html", "html"),
    (10, "documents", "pdf", "application/pdf", "mixed"),
    (8, "attachments", "bin", "application/octet-stream", "random"),
]


def _content(kind: str, size: int, rng: random.Random, text: Text) -> bytes:
    if kind == "random":
        return rng.randbytes(size)
    if kind == "text":
        return text.block(size)
    if kind == "html":
        body = text.block(max(0, size - 43))
        return (b"<html><body><article>" + body + b"</article></body></html>\n")[:size]
    if kind == "mixed":  # like a PDF: some text streams, mostly compressed images and fonts
        head = text.block(size // 4)
        return head + rng.randbytes(size - len(head))
    if kind == "json":
        out, have = [b"["], 1
        while have < size:
            item = (
                orjson.dumps(
                    {
                        "id": rng.randint(1, 10**9),
                        "name": _name(rng),
                        "note": text.sentences(1),
                        "amount": rng.randint(0, 10**6) / 100,
                        "tags": rng.sample(WORDS, 3),
                    }
                )
                + b",\n"
            )
            out.append(item)
            have += len(item)
        return b"".join(out)[:size]
    if kind == "csv":  # numbers and short words, like an export
        out, have, chunk = [b"id,at,customer,status,amount,currency,note\n"], 0, []
        i = 0
        while have < size:
            chunk.clear()
            for _ in range(2000):
                i += 1
                chunk.append(
                    f"{i},{_pg_ts(rng)},{rng.randint(1, 200_000)},{rng.choice(STATUS_NAMES)},"
                    f"{rng.randint(100, 250_000) / 100:.2f},EUR,{text.words(3)}\n"
                )
            block = "".join(chunk).encode()
            out.append(block)
            have += len(block)
        return b"".join(out)[:size]
    raise ValueError(kind)


def _write_big(path: Path, kind: str, size: int, rng: random.Random, text: Text) -> None:
    """Large objects in 4 MB pieces, so generating one never holds it all in memory."""
    with open(path, "wb") as f:
        left = size
        while left:
            piece = min(left, 4 * 1024 * 1024)
            f.write(_content(kind, piece, rng, text))
            left -= piece


def generate_storage(scale: float, out: Path) -> dict:
    tmp = _fresh(out)
    (tmp / "objects").mkdir()
    rng = random.Random(f"s3-{scale}")
    text = Text(rng)
    mb = 1024 * 1024
    n_objects = scaled(S3_OBJECTS, scale, minimum=len(S3_LARGE) + 2)
    plan = [(key, max(1024, round(size_mb * mb * scale)), ctype, kind) for key, size_mb, ctype, kind in S3_LARGE]
    n_medium = min(scaled(S3_MEDIUM, scale, minimum=0), n_objects - len(plan) - 1)
    n_small = n_objects - len(plan) - n_medium
    weights = [k[0] for k in SMALL_KINDS]
    medium = []
    for i in range(n_medium):
        _, prefix, ext, ctype, kind = rng.choices(SMALL_KINDS, weights)[0]
        medium.append(
            (
                f"{prefix}/large/{i:04d}-{text.words(2).replace(' ', '-')}.{ext}",
                rng.randint(1 * mb, 5 * mb),
                ctype,
                kind,
            )
        )
    # Small objects: log-normal sizes (median about 16 KB), scaled to fill the remaining total.
    remaining = max(n_small * 1024, round(S3_TOTAL_MB * mb * scale) - sum(p[1] for p in plan + medium))
    raw = [math.exp(rng.gauss(math.log(16_000), 1.1)) for _ in range(n_small)]
    factor = remaining / sum(raw)
    small = []
    for i, r in enumerate(raw):
        _, prefix, ext, ctype, kind = rng.choices(SMALL_KINDS, weights)[0]
        day = rng.randint(1, 28)
        small.append(
            (
                f"{prefix}/2026/11/{day:02d}/{i:06d}-{rng.getrandbits(32):08x}.{ext}",
                max(64, min(round(r * factor), 4 * mb)),
                ctype,
                kind,
            )
        )
    manifest, total = [], 0
    for n, (key, size, ctype, kind) in enumerate(plan + medium + small):
        name = f"{n:06d}"
        if size > 8 * mb:
            _write_big(tmp / "objects" / name, kind, size, rng, text)
        else:
            (tmp / "objects" / name).write_bytes(_content(kind, size, rng, text))
        size = (tmp / "objects" / name).stat().st_size
        metadata = {}
        if rng.random() < 0.3:
            metadata = {"uploaded-by": f"user-{rng.randint(1, 5000)}", "origin": rng.choice(("web", "mobile", "api"))}
        manifest.append({"key": key, "file": name, "size": size, "content_type": ctype, "metadata": metadata})
        total += size
    with open(tmp / "manifest.jsonl", "wb") as f:
        for entry in manifest:
            f.write(orjson.dumps(entry) + b"\n")
    return _finish(tmp, out, {"objects": len(manifest), "bytes": total})


# --- all ----------------------------------------------------------------------------------------------

PARTS = {"postgres": generate_postgres, "elasticsearch": generate_elasticsearch, "storage": generate_storage}


def ensure(scale: float, log=print) -> dict[str, dict]:
    """Each part's completion info, generating only the parts not cached yet."""
    base = data_dir(scale)
    base.mkdir(parents=True, exist_ok=True)
    info = {}
    for part, make in PARTS.items():
        out = base / part
        found = marker(out)
        if found is None:
            started = time.monotonic()
            log(f"generating {part} data at scale {scale:g} into {out} (first run only)")
            found = make(scale, out)
            log(f"generated {part} in {time.monotonic() - started:.1f}s")
        info[part] = found
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.01)
    args = parser.parse_args()
    print(json.dumps(ensure(args.scale), indent=2))


if __name__ == "__main__":
    main()
