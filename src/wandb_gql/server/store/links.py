"""Portfolios: collections that hold links to versions logged elsewhere (`run.link_artifact`,
W&B's `linkArtifact`). A link gets the portfolio's next version index; linking a version again
answers its existing index. Aliases of a portfolio live in artifact_aliases under the
portfolio's id, so `latest` and custom aliases stay unique per portfolio as in a sequence."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..._time import now
from . import artifacts
from ._common import BadInput


def ensure_portfolio(conn: sqlite3.Connection, project_id: int, type_name: str, name: str) -> sqlite3.Row:
    type_row = artifacts.ensure_type(conn, project_id, type_name)
    found = artifacts.collection_by_name(conn, project_id, name)
    if found is None:
        stamp = now()
        artifacts.check_name("collection", name)
        conn.execute("INSERT INTO artifact_collections (project_id, type_id, name, kind, created_at, updated_at)"
                     " VALUES (?, ?, ?, 'PORTFOLIO', ?, ?)", (project_id, type_row["id"], name, stamp, stamp))
        found = artifacts.collection_by_name(conn, project_id, name)
    assert found is not None
    if found["kind"] != "PORTFOLIO":
        raise BadInput(f"{name!r} is a collection versions are logged to, not a portfolio: link to another name")
    if found["type_id"] != type_row["id"]:
        raise BadInput(f"portfolio {name!r} holds type {found['type_name']!r}, not {type_name!r}")
    return found


def link(conn: sqlite3.Connection, portfolio: sqlite3.Row, artifact: sqlite3.Row,
         aliases: list[dict[str, Any]]) -> int:
    """The portfolio's version index for `artifact` (a new one unless already linked); aliases move."""
    if artifact["state"] != "COMMITTED":
        raise BadInput("only committed versions can be linked: wait for the artifact to finish logging")
    index = index_of(conn, portfolio["id"], artifact["id"])
    if index is None:
        index = int(conn.execute("UPDATE artifact_collections SET next_version = next_version + 1, updated_at = ?"
                                 " WHERE id = ? RETURNING next_version - 1", (now(), portfolio["id"])).fetchone()[0])
        conn.execute("INSERT INTO artifact_links (portfolio_id, artifact_id, version_index, created_at)"
                     " VALUES (?, ?, ?, ?)", (portfolio["id"], artifact["id"], index, now()))
        artifacts.set_alias(conn, portfolio["id"], "latest", artifact["id"])
    names = [a for a in artifacts.alias_names(aliases, portfolio["name"]) if a != "latest"]
    for alias in names:
        artifacts.set_alias(conn, portfolio["id"], alias, artifact["id"])
    return index


def index_of(conn: sqlite3.Connection, portfolio_id: int, artifact_id: int) -> int | None:
    row = conn.execute("SELECT version_index FROM artifact_links WHERE portfolio_id = ? AND artifact_id = ?",
                       (portfolio_id, artifact_id)).fetchone()
    return None if row is None else int(row[0])


def resolve(conn: sqlite3.Connection, portfolio_id: int, alias: str) -> sqlite3.Row | None:
    """The linked version a portfolio names by `vN` or by alias."""
    version = artifacts.VERSION.fullmatch(alias)
    if version is None:
        return artifacts.resolve(conn, portfolio_id, alias)
    row = conn.execute("SELECT artifact_id FROM artifact_links WHERE portfolio_id = ? AND version_index = ?",
                       (portfolio_id, int(version.group(1)))).fetchone()
    return None if row is None else artifacts.by_id(conn, int(row[0]))


def versions_page(conn: sqlite3.Connection, portfolio_id: int, first: int,
                  before_index: int | None) -> tuple[list[sqlite3.Row], bool]:
    """Linked versions, newest link first, each with its portfolio index as `link_index`."""
    rows = conn.execute(f"{artifacts.ARTIFACT_SELECT.replace('SELECT a.*', 'SELECT a.*, l.version_index AS link_index')}"
                        " JOIN artifact_links l ON l.artifact_id = a.id WHERE l.portfolio_id = ? AND l.version_index < ?"
                        " ORDER BY l.version_index DESC LIMIT ?",
                        (portfolio_id, 2 ** 62 if before_index is None else before_index, first + 1)).fetchall()
    return rows[:first], len(rows) > first


def count(conn: sqlite3.Connection, portfolio_id: int) -> int:
    return int(conn.execute("SELECT count(*) FROM artifact_links WHERE portfolio_id = ?", (portfolio_id,)).fetchone()[0])


def unlink(conn: sqlite3.Connection, portfolio_id: int, artifact_id: int) -> None:
    """unlinkArtifact: the link and the portfolio's aliases of that version go; `latest` moves to
    the newest link left. The version itself stays in its sequence."""
    portfolio = artifacts.collection_by_id(conn, portfolio_id)
    if portfolio is None or portfolio["kind"] != "PORTFOLIO":
        raise BadInput("artifactPortfolioID does not name a portfolio: pass the linked collection's id")
    if conn.execute("DELETE FROM artifact_links WHERE portfolio_id = ? AND artifact_id = ?",
                    (portfolio_id, artifact_id)).rowcount == 0:
        raise BadInput(f"the artifact is not linked to portfolio {portfolio['name']!r}")
    conn.execute("DELETE FROM artifact_aliases WHERE collection_id = ? AND artifact_id = ?", (portfolio_id, artifact_id))
    newest = conn.execute("SELECT artifact_id FROM artifact_links WHERE portfolio_id = ?"
                          " ORDER BY version_index DESC LIMIT 1", (portfolio_id,)).fetchone()
    if newest is not None:
        artifacts.set_alias(conn, portfolio_id, "latest", newest[0])
