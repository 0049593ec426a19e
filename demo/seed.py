"""Fills the local PostgreSQL, Elasticsearch and S3 store with a small, realistic stack.

The data is what backups and restores are tried against, so it deliberately
carries the awkward parts: two PostgreSQL schemas with foreign keys between
them, an explicit sequence, an enum, bytea, jsonb, unicode and control
characters in text; Elasticsearch index, component and legacy templates,
nested fields, custom routing, filtered and write aliases; S3 keys with
spaces and unicode, content types, user metadata and an empty object.

Everything is generated from fixed random seeds, and every run first removes
what an earlier run created, so running it twice leaves the same data.
It is destructive for the objects it owns (schema `app`, a few `public`
tables, the indices and templates below, and every object in the bucket):
point it at the demo stack only.

    python -m demo.seed
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import random
import struct
import unicodedata
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import elasticsearch
import psycopg
from elasticsearch import helpers
from psycopg.types.json import Jsonb

from archivist.config import (
    ElasticsearchSettings,
    PostgresSettings,
    S3Settings,
    load_elasticsearch,
    load_postgres,
    load_storage,
)
from archivist.transport import s3io

SEED = 20261126
# Every timestamp is an offset from here, so the data does not depend on the clock.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

COUNTRIES = [
    # code, name, currency, capital latitude/longitude (for the geo_point in Elasticsearch)
    ("FR", "France", "EUR", 48.86, 2.35),
    ("DE", "Deutschland", "EUR", 52.52, 13.40),
    ("ES", "España", "EUR", 40.42, -3.70),
    ("PT", "Portugal", "EUR", 38.72, -9.14),
    ("PL", "Polska", "PLN", 52.23, 21.01),
    ("SE", "Sverige", "SEK", 59.33, 18.07),
    ("GR", "Ελλάδα", "EUR", 37.98, 23.73),
    ("JP", "日本", "JPY", 35.68, 139.69),
    ("CN", "中国", "CNY", 39.90, 116.40),
    ("KR", "대한민국", "KRW", 37.57, 126.98),
    ("US", "United States", "USD", 38.90, -77.04),
    ("BR", "Brasil", "BRL", -15.79, -47.88),
]
FIRST_NAMES = [
    "Zoë",
    "José",
    "Françoise",
    "Søren",
    "Łukasz",
    "Αλέξης",
    "Дмитрий",
    "太郎",
    "小龙",
    "지민",
    "Ana",
    "Björn",
    "Chloé",
    "Émile",
    "Íñigo",
    "Maëlle",
    "Noémie",
    "Oğuz",
    "Renée",
    "John",
]
LAST_NAMES = [
    "Müller",
    "Álvarez",
    "Kierkegård",
    "Żółć",
    "Παπαδόπουλος",
    "Иванов",
    "山田",
    "李",
    "김",
    "O'Brien",
    "da Silva",
    "Dupont-Aignan",
    "Ångström",
    "Nguyễn",
    "Smith",
    "García",
]
PRODUCT_WORDS = [
    "café",
    "crème",
    "thé vert",
    "matcha 抹茶",
    "chocolat",
    "mug",
    "carnet",
    "stylo",
    "sac à dos",
    "parapluie",
    "écharpe",
    "bougie",
    "lampe",
    "tasse ☕",
    "plaid",
    "puzzle 🧩",
]
NOTES = [
    None,
    "Livraison avant 18h, merci !",
    "Gift wrap 🎁 please",
    "請在週末送貨",
    "Leave at the door\tnext to the 🌵",
    'Line one\nLine two with a "quote" and a back\\slash',
    "Straße 5, 3. OG — klingeln bei Müller",
    "",
]


@dataclass(frozen=True)
class Customer:
    """One customer, shared by all three servers so the stack hangs together."""

    id: int
    full_name: str
    email: str
    country: str
    created_at: datetime


def _ascii_fold(text: str) -> str:
    """`Zoë` -> `zoe`; scripts with no Latin form fold to the empty string."""
    decomposed = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return "".join(ch for ch in decomposed if ch.isalnum())


def customers(count: int = 400) -> list[Customer]:
    """The same customers every run: PostgreSQL ids 1..count, mirrored in Elasticsearch and S3."""
    rng = random.Random(SEED)
    people = []
    for i in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # The id in the address keeps emails unique whatever names were drawn.
        email = f"{_ascii_fold(first) or 'client'}.{i}@example.{rng.choice(['com', 'org', 'fr', 'jp'])}"
        people.append(
            Customer(
                id=i,
                full_name=f"{first} {last}",
                email=email,
                country=rng.choice(COUNTRIES)[0],
                created_at=EPOCH + timedelta(seconds=rng.randrange(300 * 86400)),
            )
        )
    return people


# --- generated files ---------------------------------------------------------------------


def png_bytes(width: int, height: int, rng: random.Random) -> bytes:
    """A valid RGB PNG with a vertical gradient between two random colours."""
    top = [rng.randrange(256) for _ in range(3)]
    bottom = [rng.randrange(256) for _ in range(3)]
    rows = []
    for y in range(height):
        colour = bytes(top[c] + (bottom[c] - top[c]) * y // max(height - 1, 1) for c in range(3))
        rows.append(b"\x00" + colour * width)  # filter byte 0 (None) then the pixels

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def pdf_bytes(title: str, lines: list[str]) -> bytes:
    """A small one-page PDF with a correct cross-reference table; text limited to Latin-1."""

    def escape(text: str) -> str:
        text = text.encode("latin-1", "replace").decode("latin-1")
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = [title, *lines]
    stream = "BT /F1 12 Tf 72 760 Td 16 TL " + " ".join(f"({escape(t)}) '" for t in shown) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


# --- PostgreSQL --------------------------------------------------------------------------

PG_RESET = """
DROP SCHEMA IF EXISTS app CASCADE;
DROP TABLE IF EXISTS public.audit_log, public.countries CASCADE;
"""

PG_SCHEMA = """
CREATE TABLE public.countries (
    code char(2) PRIMARY KEY,
    name text NOT NULL,
    currency char(3) NOT NULL
);

CREATE TABLE public.audit_log (
    id bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    entity text NOT NULL,
    entity_id bigint,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_occurred_at_idx ON public.audit_log (occurred_at);
CREATE INDEX audit_log_details_idx ON public.audit_log USING gin (details);

CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'The demo shop';

CREATE TYPE app.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled');

CREATE TABLE app.customers (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    full_name text NOT NULL,
    country char(2) NOT NULL REFERENCES public.countries (code),
    credit_limit numeric(12, 2) NOT NULL DEFAULT 0,
    preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX customers_email_key ON app.customers (lower(email));

-- A standalone sequence (not owned by a column): a restore must bring back its value too.
CREATE SEQUENCE app.order_number_seq START WITH 100001;

CREATE TABLE app.orders (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    number bigint NOT NULL UNIQUE DEFAULT nextval('app.order_number_seq'),
    customer_id bigint NOT NULL REFERENCES app.customers (id) ON DELETE CASCADE,
    status app.order_status NOT NULL DEFAULT 'pending',
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    currency char(3) NOT NULL,
    items jsonb NOT NULL,
    note text,
    ordered_at timestamptz NOT NULL
);
CREATE INDEX orders_customer_id_idx ON app.orders (customer_id);
COMMENT ON TABLE app.orders IS 'Numbers come from app.order_number_seq';

CREATE TABLE app.attachments (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES app.orders (id) ON DELETE CASCADE,
    filename text NOT NULL,
    content_type text NOT NULL,
    content bytea,
    sha256 char(64),
    uploaded_at timestamptz NOT NULL
);

CREATE VIEW app.customer_order_totals AS
SELECT c.id AS customer_id, c.full_name, c.country,
       count(o.id) AS order_count, coalesce(sum(o.total), 0) AS total_spent
FROM app.customers c
LEFT JOIN app.orders o ON o.customer_id = c.id
GROUP BY c.id;
"""

PG_TABLES = ("public.countries", "public.audit_log", "app.customers", "app.orders", "app.attachments")


def _order_rows(rng: random.Random, people: list[Customer], count: int) -> Iterator[tuple]:
    statuses = ["pending", "paid", "shipped", "delivered", "cancelled"]
    currency = {code: cur for code, _, cur, _, _ in COUNTRIES}
    for _ in range(count):
        customer = rng.choice(people)
        items = [
            {
                "sku": f"SKU-{rng.randrange(1, 201):05d}",
                "name": rng.choice(PRODUCT_WORDS),
                "qty": rng.randint(1, 5),
                "unit_price": round(rng.uniform(2, 150), 2),
            }
            for _ in range(rng.randint(1, 4))
        ]
        total = Decimal(str(round(sum(i["qty"] * i["unit_price"] for i in items), 2))).quantize(Decimal("0.01"))
        ordered_at = customer.created_at + timedelta(minutes=rng.randrange(60 * 24 * 60))
        yield (
            customer.id,
            rng.choice(statuses),
            total,
            currency[customer.country],
            Jsonb({"items": items, "gift": rng.random() < 0.1}),
            rng.choice(NOTES),
            ordered_at,
        )


def _attachment_rows(rng: random.Random, order_count: int, count: int) -> Iterator[tuple]:
    for i in range(count):
        kind = i % 4
        if kind == 0:
            filename, content_type, content = f"photo-{i}.png", "image/png", png_bytes(24, 16, rng)
        elif kind == 1:
            filename, content_type = f"facture n°{i}.pdf", "application/pdf"
            content = pdf_bytes(f"Facture {i}", [f"Montant : {rng.randint(5, 900)} EUR"])
        elif kind == 2:
            # Raw bytes with NULs and high bytes: the bytea escaping must survive the round trip.
            filename, content_type, content = (
                f"blob-{i}.bin",
                "application/octet-stream",
                rng.randbytes(rng.randrange(1, 4096)),
            )
        else:
            filename, content_type, content = (
                f"reçu {i} 🧾.txt",
                "text/plain; charset=utf-8",
                f"Reçu n°{i} — merci 🙏\n".encode(),
            )
        if i == 5:
            content = b""  # an empty value, distinct from NULL
        if i == 9:
            content = None
        digest = hashlib.sha256(content).hexdigest() if content is not None else None
        uploaded_at = EPOCH + timedelta(seconds=rng.randrange(330 * 86400))
        yield (rng.randint(1, order_count), filename, content_type, content, digest, uploaded_at)


def _audit_rows(rng: random.Random, people: list[Customer], count: int) -> Iterator[tuple]:
    actions = [
        ("customer", "created"),
        ("customer", "updated"),
        ("order", "created"),
        ("order", "paid"),
        ("order", "shipped"),
        ("session", "login"),
        ("session", "logout"),
    ]
    for _ in range(count):
        entity, action = rng.choice(actions)
        actor = rng.choice(people)
        details = {
            "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "user_agent": rng.choice(["Mozilla/5.0", "curl/8.5.0", "archivist-demo/1.0"]),
            "actor_name": actor.full_name,
        }
        if action == "updated":
            details["changes"] = {"full_name": [actor.full_name, actor.full_name.upper()]}
        occurred_at = EPOCH + timedelta(seconds=rng.randrange(330 * 86400), microseconds=rng.randrange(10**6))
        yield (occurred_at, actor.email, action, entity, rng.randint(1, 1600), Jsonb(details))


def seed_postgres(settings: PostgresSettings) -> dict[str, int]:
    """Recreates the demo tables in one transaction; returns rows per table."""
    rng = random.Random(SEED + 1)
    people = customers()
    order_count, attachment_count, audit_count = 1600, 120, 1200
    with psycopg.connect(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password or None,
        dbname=settings.dbname,
    ) as conn:
        # One transaction: a failure leaves the previous data, never half of the new.
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(PG_RESET)
            cur.execute(PG_SCHEMA)
            cur.executemany(
                "INSERT INTO public.countries (code, name, currency) VALUES (%s, %s, %s)", [c[:3] for c in COUNTRIES]
            )
            # Inserted in id order, so the fresh identity gives customer i the id i.
            cur.executemany(
                "INSERT INTO app.customers (email, full_name, country, credit_limit, preferences, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        p.email,
                        p.full_name,
                        p.country,
                        Decimal(rng.randrange(0, 500000)) / 100,
                        Jsonb({"newsletter": rng.random() < 0.4, "language": rng.choice(["fr", "en", "ja", "de"])}),
                        p.created_at,
                    )
                    for p in people
                ],
            )
            # `number` is left out so it comes from the sequence default.
            cur.executemany(
                "INSERT INTO app.orders (customer_id, status, total, currency, items, note, ordered_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                list(_order_rows(rng, people, order_count)),
            )
            cur.executemany(
                "INSERT INTO app.attachments (order_id, filename, content_type, content, sha256, uploaded_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                list(_attachment_rows(rng, order_count, attachment_count)),
            )
            cur.executemany(
                "INSERT INTO public.audit_log (occurred_at, actor, action, entity, entity_id, details) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                list(_audit_rows(rng, people, audit_count)),
            )
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in PG_TABLES}


# --- Elasticsearch -----------------------------------------------------------------------
# Only built-in analyzers and core field types: the test distribution has no
# analysis-common, mapper-extras, ingest, painless or data streams.

COMPONENT_TEMPLATE = "archivist-demo-logs-mappings"
INDEX_TEMPLATE = "archivist-demo-logs"
LEGACY_TEMPLATE = "archivist-demo-legacy"
LOGS_INDEX = "logs-demo-2026.11"
LEGACY_INDEX = "legacy-events"
ES_INDICES = ("products", "customers", LOGS_INDEX, LEGACY_INDEX)

SINGLE_SHARD = {"number_of_shards": 1, "number_of_replicas": 0}

PRODUCTS_MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "sku": {"type": "keyword"},
        "name": {"type": "text", "analyzer": "standard", "fields": {"raw": {"type": "keyword"}}},
        "description": {"type": "text", "analyzer": "simple"},
        "category": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "price": {"type": "float"},
        "in_stock": {"type": "boolean"},
        "created_at": {"type": "date"},
        "variants": {
            "type": "nested",
            "properties": {
                "sku": {"type": "keyword"},
                "colour": {"type": "keyword"},
                "size": {"type": "keyword"},
                "price": {"type": "float"},
                "stock": {"type": "integer"},
            },
        },
    },
}

CUSTOMERS_MAPPINGS = {
    # Every write must name a routing value: a restore that drops it would fail loudly.
    "_routing": {"required": True},
    "properties": {
        "customer_id": {"type": "long"},
        "full_name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        "email": {"type": "keyword"},
        "country": {"type": "keyword"},
        "created_at": {"type": "date"},
        "address": {
            "properties": {
                "city": {"type": "keyword"},
                "street": {"type": "text", "analyzer": "whitespace"},
                "postcode": {"type": "keyword"},
                "location": {"type": "geo_point"},
            }
        },
        "preferences": {"type": "object", "enabled": False},  # stored in _source only
    },
}

LOGS_MAPPINGS = {
    "properties": {
        "@timestamp": {"type": "date"},
        "level": {"type": "keyword"},
        "service": {"type": "keyword"},
        "message": {"type": "text"},
        "trace_id": {"type": "keyword"},
        "host": {"properties": {"name": {"type": "keyword"}, "ip": {"type": "ip"}}},
        "http": {
            "properties": {"method": {"type": "keyword"}, "path": {"type": "keyword"}, "status": {"type": "short"}}
        },
        "duration_ms": {"type": "long"},
    }
}

LEGACY_MAPPINGS = {
    "properties": {
        "event": {"type": "keyword"},
        "occurred_at": {"type": "date", "format": "strict_date_optional_time||epoch_millis"},
        "user_id": {"type": "long"},
        "summary": {"type": "text", "analyzer": "whitespace"},
        "payload": {"type": "object", "enabled": False},
    }
}


def _reset_elasticsearch(es: elasticsearch.Elasticsearch) -> None:
    """Removes what an earlier run created; indices first, as templates are in use until then."""
    quiet = es.options(ignore_status=404)
    quiet.indices.delete(index=",".join(ES_INDICES), ignore_unavailable=True)
    quiet.indices.delete_index_template(name=INDEX_TEMPLATE)
    quiet.cluster.delete_component_template(name=COMPONENT_TEMPLATE)
    quiet.indices.delete_template(name=LEGACY_TEMPLATE)


def _put_templates(es: elasticsearch.Elasticsearch) -> None:
    es.cluster.put_component_template(
        name=COMPONENT_TEMPLATE, template={"mappings": LOGS_MAPPINGS}, meta={"owner": "archivist-demo"}
    )
    es.indices.put_index_template(
        name=INDEX_TEMPLATE,
        index_patterns=["logs-demo-*"],
        composed_of=[COMPONENT_TEMPLATE],
        # Above the priority-100 built-in `logs-*-*` template of full distributions.
        priority=200,
        template={"settings": SINGLE_SHARD, "aliases": {"logs-demo": {}}},
        meta={"owner": "archivist-demo"},
    )
    # Legacy templates are deprecated; the deprecation warning is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", elasticsearch.ElasticsearchWarning)
        es.indices.put_template(
            name=LEGACY_TEMPLATE,
            index_patterns=["legacy-*"],
            order=1,
            settings=SINGLE_SHARD,
            mappings=LEGACY_MAPPINGS,
            aliases={"legacy": {}},
        )


def _create_indices(es: elasticsearch.Elasticsearch) -> None:
    es.indices.create(
        index="products",
        settings=SINGLE_SHARD,
        mappings=PRODUCTS_MAPPINGS,
        aliases={"catalog": {"filter": {"term": {"in_stock": True}}}, "products-write": {"is_write_index": True}},
    )
    # Three shards so the custom routing actually decides where documents live.
    es.indices.create(
        index="customers", settings={"number_of_shards": 3, "number_of_replicas": 0}, mappings=CUSTOMERS_MAPPINGS
    )
    # No body: settings, mappings and aliases come from the templates.
    es.indices.create(index=LOGS_INDEX, aliases={"logs-demo-write": {"is_write_index": True}})
    es.indices.create(index=LEGACY_INDEX)


def _product_actions(rng: random.Random, count: int = 200) -> Iterator[dict]:
    colours, sizes = ["noir", "blanc", "rouge", "bleu ciel", "vert d'eau"], ["XS", "S", "M", "L", "XL"]
    for i in range(1, count + 1):
        sku = f"SKU-{i:05d}"
        name = f"{rng.choice(PRODUCT_WORDS)} {rng.choice(['classique', 'édition limitée', '限定版', 'bio'])}"
        variants = [
            {
                "sku": f"{sku}-{v}",
                "colour": rng.choice(colours),
                "size": rng.choice(sizes),
                "price": round(rng.uniform(3, 200), 2),
                "stock": rng.randrange(0, 50),
            }
            for v in range(rng.randint(1, 4))
        ]
        yield {
            "_index": "products",
            "_id": sku,
            "_source": {
                "sku": sku,
                "name": name,
                "description": f"{name.capitalize()} — fabriqué avec soin. Idéal pour offrir 🎁.",
                "category": rng.choice(["maison", "cuisine", "papeterie", "mode", "jeux"]),
                "tags": rng.sample(["nouveau", "promo", "éco", "cadeau", "best-seller"], rng.randint(0, 3)),
                "price": min(v["price"] for v in variants),
                "in_stock": any(v["stock"] for v in variants),
                "created_at": (EPOCH + timedelta(days=rng.randrange(300))).isoformat(),
                "variants": variants,
            },
        }


def _customer_actions(rng: random.Random, people: list[Customer]) -> Iterator[dict]:
    places = {code: (lat, lon) for code, _, _, lat, lon in COUNTRIES}
    for p in people:
        lat, lon = places[p.country]
        yield {
            "_index": "customers",
            "_id": str(p.id),
            "_routing": p.country,
            "_source": {
                "customer_id": p.id,
                "full_name": p.full_name,
                "email": p.email,
                "country": p.country,
                "created_at": p.created_at.isoformat(),
                "address": {
                    "city": rng.choice(["Paris", "München", "Kraków", "Tōkyō", "São Paulo", "Göteborg"]),
                    "street": f"{rng.randint(1, 200)} rue de l'Église",
                    "postcode": f"{rng.randrange(10000, 99999)}",
                    "location": {"lat": round(lat + rng.uniform(-1, 1), 4), "lon": round(lon + rng.uniform(-1, 1), 4)},
                },
                "preferences": {"newsletter": rng.random() < 0.5, "theme": rng.choice(["dark", "light"])},
            },
        }


def _log_actions(rng: random.Random, count: int = 1000) -> Iterator[dict]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    paths = ["/api/orders", "/api/customers/{id}", "/api/products", "/healthz", "/api/checkout"]
    for i in range(count):
        status = rng.choices([200, 201, 204, 301, 404, 500], weights=[70, 8, 5, 3, 10, 4])[0]
        level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
        method, path = rng.choice(["GET", "POST", "PUT", "DELETE"]), rng.choice(paths)
        yield {
            "_index": LOGS_INDEX,
            "_id": f"log-{i:05d}",
            "_source": {
                "@timestamp": (
                    start + timedelta(seconds=rng.randrange(29 * 86400), milliseconds=rng.randrange(1000))
                ).isoformat(timespec="milliseconds"),
                "level": level,
                "service": rng.choice(["api", "worker", "checkout"]),
                "message": f"{method} {path} -> {status}" + (" — échec du paiement ❌" if status == 500 else ""),
                "trace_id": f"{rng.getrandbits(64):016x}",
                "host": {"name": f"web-{rng.randint(1, 4)}", "ip": f"10.0.{rng.randrange(8)}.{rng.randrange(1, 255)}"},
                "http": {"method": method, "path": path, "status": status},
                "duration_ms": rng.randrange(1, 3000),
            },
        }


def _legacy_actions(rng: random.Random, count: int = 150) -> Iterator[dict]:
    for i in range(count):
        event = rng.choice(["signup", "password_reset", "export", "import"])
        occurred = EPOCH - timedelta(days=rng.randrange(1, 700))
        yield {
            "_index": LEGACY_INDEX,
            "_id": f"evt-{i:04d}",
            "_source": {
                "event": event,
                # Half as epoch millis, half as ISO strings: both formats are in the mapping.
                "occurred_at": int(occurred.timestamp() * 1000) if i % 2 else occurred.isoformat(),
                "user_id": rng.randint(1, 400),
                "summary": f"{event} par l'utilisateur n°{i}",
                "payload": {"raw": rng.randbytes(12).hex(), "attempt": rng.randint(1, 3)},
            },
        }


def seed_elasticsearch(settings: ElasticsearchSettings) -> dict[str, int]:
    """Recreates the demo templates, indices and aliases; returns documents per index."""
    with elasticsearch.Elasticsearch(settings.url, **settings.client_options(), request_timeout=60) as es:
        _reset_elasticsearch(es)
        _put_templates(es)
        _create_indices(es)
        rng = random.Random(SEED + 2)
        for actions in (
            _product_actions(rng),
            _customer_actions(rng, customers()),
            _log_actions(rng),
            _legacy_actions(rng),
        ):
            helpers.bulk(es, actions, chunk_size=500)
        es.indices.refresh(index=",".join(ES_INDICES))
        return {name: es.count(index=name)["count"] for name in ES_INDICES}


# --- S3 application bucket ---------------------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    key: str
    body: bytes
    content_type: str
    metadata: dict[str, str] | None = None


def _uploads(rng: random.Random, count: int = 120) -> Iterator[S3Object]:
    for i in range(count):
        day = rng.randint(1, 30)
        yield S3Object(
            f"uploads/2026/11/{day:02d}/img-{i:04d}.png",
            png_bytes(rng.randint(8, 48), rng.randint(8, 48), rng),
            "image/png",
        )


def _avatars(rng: random.Random, people: list[Customer]) -> Iterator[S3Object]:
    for p in people[:80]:
        # Header values must be ASCII, so the unicode name travels percent-encoded.
        yield S3Object(
            f"avatars/{p.id}.png",
            png_bytes(32, 32, rng),
            "image/png",
            {"customer-id": str(p.id), "display-name": quote(p.full_name), "country": p.country},
        )


def _reports(rng: random.Random) -> Iterator[S3Object]:
    for quarter, months in (("q3", ["07", "08", "09"]), ("q4", ["10", "11"])):
        for month in months:
            rows = [
                [f"2026-{month}-{d:02d}", rng.choice(PRODUCT_WORDS), rng.randint(1, 40), f"{rng.uniform(10, 2000):.2f}"]
                for d in range(1, 29)
            ]
            yield S3Object(
                f"reports/{quarter}/sales-2026-{month}.csv",
                csv_bytes(["date", "produit", "quantité", "montant_eur"], rows),
                "text/csv; charset=utf-8",
            )
            yield S3Object(
                f"reports/{quarter}/summary-2026-{month}.pdf",
                pdf_bytes(f"Rapport 2026-{month}", [f"Ventes : {sum(r[2] for r in rows)} unités"]),
                "application/pdf",
                {"generated-by": "archivist-demo", "quarter": quarter},
            )
        yield S3Object(
            f"reports/{quarter}/summary.json",
            json_bytes({"quarter": quarter, "months": months, "note": "chiffres provisoires ✅"}),
            "application/json",
        )


def _exports(rng: random.Random, people: list[Customer], count: int = 60) -> Iterator[S3Object]:
    for i in range(count):
        p = rng.choice(people)
        yield S3Object(
            f"exports/customers/{p.country.lower()}/{p.id}/profile-{i:03d}.json",
            json_bytes({"id": p.id, "name": p.full_name, "email": p.email, "created_at": p.created_at.isoformat()}),
            "application/json",
        )


def _notes(rng: random.Random, count: int = 40) -> Iterator[S3Object]:
    for i in range(count):
        text = "\n".join(n or "—" for n in rng.sample(NOTES, 3)) + "\n"
        yield S3Object(f"notes/{i // 10}/note-{i:03d}.txt", text.encode("utf-8"), "text/plain; charset=utf-8")


def _odd_keys(rng: random.Random) -> Iterator[S3Object]:
    """Keys a naive restore gets wrong: spaces, unicode, brackets, and an empty object."""
    yield S3Object(
        "shared/Quarterly Report (final).pdf",
        pdf_bytes("Quarterly Report", ["final, really"]),
        "application/pdf",
        {"original-name": quote("Quarterly Report (final).pdf")},
    )
    yield S3Object(
        "shared/résumé – José Álvarez.txt", "José Álvarez — développeur\n".encode(), "text/plain; charset=utf-8"
    )
    yield S3Object("shared/日本語/ファイル 1.txt", "こんにちは世界\n".encode(), "text/plain; charset=utf-8")
    yield S3Object("shared/emoji 🎉/party [2026] #1.json", json_bytes({"🎉": True}), "application/json")
    yield S3Object("shared/photo+plus&amp.png", png_bytes(10, 10, rng), "image/png")
    yield S3Object("uploads/.keep", b"", "application/octet-stream")


def _empty_bucket(s3: Any, bucket: str) -> None:
    """Deletes every object (the bucket is unversioned, so this removes them for good)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def seed_storage(settings: S3Settings) -> dict[str, int]:
    """Replaces the bucket's contents with the demo objects; returns objects and bytes."""
    s3 = s3io.client(settings)
    _empty_bucket(s3, settings.bucket)
    rng = random.Random(SEED + 3)
    people = customers()
    objects = [
        *_uploads(rng),
        *_avatars(rng, people),
        *_reports(rng),
        *_exports(rng, people),
        *_notes(rng),
        *_odd_keys(rng),
    ]
    for obj in objects:
        extra = {"Metadata": obj.metadata} if obj.metadata else {}
        s3.put_object(Bucket=settings.bucket, Key=obj.key, Body=obj.body, ContentType=obj.content_type, **extra)
    listed = [
        o
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket)
        for o in page.get("Contents", [])
    ]
    return {"objects": len(listed), "bytes": sum(o["Size"] for o in listed)}


# --- entry points ------------------------------------------------------------------------


def seed(pg_settings: PostgresSettings, es_settings: ElasticsearchSettings, s3_settings: S3Settings) -> dict:
    """Seeds all three servers; returns the counts read back from each."""
    return {
        "postgres": seed_postgres(pg_settings),
        "elasticsearch": seed_elasticsearch(es_settings),
        "storage": seed_storage(s3_settings),
    }


def summary(counts: dict) -> str:
    pg, es, s3 = counts["postgres"], counts["elasticsearch"], counts["storage"]
    return (
        f"postgres: {sum(pg.values())} rows in {len(pg)} tables ({', '.join(f'{t}={n}' for t, n in pg.items())}); "
        f"elasticsearch: {sum(es.values())} docs in {len(es)} indices "
        f"({', '.join(f'{i}={n}' for i, n in es.items())}); "
        f"storage: {s3['objects']} objects, {s3['bytes']} bytes"
    )


def main() -> None:
    # The Elasticsearch client logs every request at INFO; the summary line is what matters here.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    counts = seed(load_postgres(), load_elasticsearch(), load_storage())
    print(summary(counts))


if __name__ == "__main__":
    main()
