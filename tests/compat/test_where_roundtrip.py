"""Every compiled --where filter is accepted by the real wandb.Api().runs(filters=...) and
returns the same runs as this client's own listing; a compiled --order sorts as the SDK's own
order key does."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from wandb_gql import SyncClient, compile_order, compile_where

pytestmark = pytest.mark.compat

EXPRESSIONS = [
    "state in (crashed, failed)",
    "state = finished and summary.val/acc >= 0.85",
    "config.lr = 0.001 and tags has baseline",
    "config.optimizer.name = adam and config.batch_size >= 128",
    "not (group = ablation or display_name ~ \"^sgd\") and summary.loss exists",
    "summary.best.val/acc > 0.9 or job_type = eval",
    "tags in (tmp, large) and state != running",
    "sweep exists and user = alice",
    "created_at < 60d ago and heartbeat_at > 100d ago",
    "name in (vi000001, vi000002, vi000500) or config.seed not in (0, 1, 2, 3, 4, 5)",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_compiled_filter_round_trips_through_the_real_sdk(wb, server, expression):
    now = datetime.now(timezone.utc)
    compiled = compile_where(expression, now=now).filters
    with SyncClient(server.base_url, server.api_key) as client:
        # the SDK's "-created_at" and our compiled "-createdAt" must sort alike
        ours = [r.name for r in client.runs("demo/vision", filters=compiled, order=compile_order("-created_at"))]
    sdk = [r.id for r in wb.Api().runs("demo/vision", filters=compiled, order="-created_at", per_page=200)]
    assert sdk == ours
    assert 0 < len(ours) < 1200, "a round-trip case should select some runs but not all"
