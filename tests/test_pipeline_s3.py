"""Done-means (3): the pipeline writes images, manifest, ledger and spend through ``s3://`` (moto server on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dagster as dg
import fsspec
import pytest
from pipeline_support import CountingLocalResource, materialize_range

from dagster_imggen.pipeline import PromptSource, build_image_generation_assets, read_ledger, reconcile

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_pipeline_through_s3(s3_endpoint: str) -> None:
    options = {"client_kwargs": {"endpoint_url": s3_endpoint}, "key": "testing", "secret": "testing"}
    fs = fsspec.filesystem("s3", **options)
    fs.mkdir("imggen-test")
    with fs.open("imggen-test/in/prompts.jsonl", "w") as f:
        f.write(
            '{"Prompt": "a paper boat", "Category": "Toys"}\n{"Prompt": "a tin robot", "Category": "Toys"}\n'
        )
        f.write('{"Prompt": "a kite over a beach", "Category": "Sky"}\n')
    pipeline = build_image_generation_assets(
        prompts=PromptSource(
            url="s3://imggen-test/in/prompts.jsonl", partition_column="Category", storage_options=options
        ),
        output_root="s3://imggen-test/out",
        storage_options=options,
        defaults={"model": "gpt-image-2", "size": "1024x1024", "quality": "low", "output_format": "webp"},
    )
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_range(pipeline, ["Sky", "Toys"], CountingLocalResource(counter="s3"), instance)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())

    fs.invalidate_cache()
    images = sorted(p for p in fs.find("imggen-test/out/images") if p.endswith(".webp"))
    assert len(images) == 3
    assert all(p.startswith("imggen-test/out/images/") for p in images)
    assert fs.exists("imggen-test/out/images/Toys/_manifest.json")
    assert fs.exists("imggen-test/out/spend/spend.parquet")
    assert [p for p in fs.find("imggen-test/out/usage") if "partition_key=Toys" in p]
    assert not [p for p in fs.find("imggen-test/out") if p.endswith(".tmp")]

    ledger = read_ledger("s3://imggen-test/out", options)
    assert ledger.num_rows == 3
    assert all(
        u.startswith("s3://imggen-test/out/images/") for r in ledger.to_pylist() for u in r["image_uris"]
    )
    assert reconcile("s3://imggen-test/out", options).ok
