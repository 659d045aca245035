"""`wbgql server users|keys|teams`: the local server's users, their API keys and teams.

These act on the database file directly (no running server needed, and a running one sees the
change on its next request: keys are looked up per request). A new key is printed once, on
stdout; only its SHA-256 is stored, so `keys list` shows names, owners and dates, never keys.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, List, Optional

import typer

from ._common import CONTEXT, EXIT_FAILURE, examples, fail, new_app, write

if TYPE_CHECKING:
    from ..server.store import Store

DbOpt = Annotated[Optional[Path], typer.Option(
    "--db", metavar="FILE", show_default=False,
    help="The server's database [default: $XDG_DATA_HOME/wandb-gql/server.db, ~/.local/share/...].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")]

_BUSY = "the database is busy (another process is writing to it); try again in a moment"

users_app = new_app("The local server's users (each has an entity of its name).")
keys_app = new_app("API keys of the local server's users (never shown after creation).")
teams_app = new_app("Teams: entities several users read and write.")


def server_app(run: Any, epilog: str) -> typer.Typer:
    """`wbgql server`: runs the server (`run`) unless a users/keys/teams command follows."""
    # Not new_app's Group: it hands the group's own options over as plain strings, and the
    # server's options (--port, --workers) are typed.
    app = typer.Typer(help=run.__doc__, rich_markup_mode=None, context_settings=CONTEXT,
                      pretty_exceptions_enable=False, add_completion=False, no_args_is_help=False)
    app.callback(invoke_without_command=True, epilog=epilog)(run)
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.add_typer(teams_app, name="teams")
    return app


def _open(db: Path | None) -> "Store":
    from .server import _check_db
    from ..server.local import default_db_path, open_store

    path = db or default_db_path()
    _check_db(path)
    import sqlite3

    from ..server.db import Busy

    try:
        return open_store(path)
    except Busy:
        fail(_BUSY, EXIT_FAILURE)
    except (OSError, sqlite3.Error) as e:
        fail(f"--db {path}: cannot use it as the server's database: {e}")


class _Writing:
    """The store and one write transaction; a refusal (BadInput) is a one-line exit 2."""

    def __init__(self, db: Path | None) -> None:
        self.store = _open(db)

    def __enter__(self) -> "Store":
        from ..server.db import Busy

        self._tx = self.store.writing()
        try:
            self._tx.__enter__()
        except Busy:
            fail(_BUSY, EXIT_FAILURE)
        return self.store

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        from ..server.store import BadInput

        self._tx.__exit__(kind, error, tb)
        self.store.close()
        if isinstance(error, BadInput):
            fail(str(error))


def _name(value: str, what: str) -> str:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
        fail(f"{what} {value!r}: use lowercase letters, digits, '-' and '_' (at most 64, as W&B entity names)")
    return value


def _rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    import orjson

    if as_json:
        write("".join(orjson.dumps(r).decode() + "\n" for r in rows))
        return
    shown = [[", ".join(v) if isinstance(v, list) else str(v) for v in (r[c] for c in columns)] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in shown]
    write("\n".join(line.rstrip() for line in lines) + "\n")


def _print_key(key: str, user: str) -> None:
    sys.stderr.write(f"API key for {user}; it is shown only this once (the server keeps its hash):\n")
    sys.stdout.write(key + "\n")
    sys.stdout.flush()


@users_app.command("add", epilog=examples("wbgql server users add alice --team vision-lab",
                                          "wbgql server users add bob --db ./rehearsal.db > bob.key"))
def users_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Username, also the name of their own entity.")],
    team: Annotated[Optional[List[str]], typer.Option(
        "--team", metavar="TEAM", show_default=False, help="Make them a member of this team, created if new (repeatable).")] = None,
    key_name: Annotated[Optional[str], typer.Option("--key-name", metavar="NAME", show_default=False,
                                                    help="Name of their first key [default: NAME].")] = None,
    db: DbOpt = None,
) -> None:
    """Add a user with their own entity, and print their first API key (once)."""
    from ..server.store import new_api_key

    _name(name, "user")
    for t in team or []:
        _name(t, "--team")
    key = new_api_key()
    with _Writing(db) as store:
        viewer = store.add_user(name)
        for t in team or []:
            store.add_member(t, viewer.id)
        store.add_api_key(key, key_name or name, user_id=viewer.id)
    _print_key(key, name)


@users_app.command("list", epilog=examples("wbgql server users list", "wbgql server users list --json"))
def users_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Users, whether they are the admin, their teams and how many keys they have."""
    store = _open(db)
    with store.reading():
        rows = store.users_list()
    store.close()
    _rows(rows, ["username", "admin", "teams", "keys"], as_json)


@keys_app.command("add", epilog=examples("wbgql server keys add alice --name laptop"))
def keys_add(
    user: Annotated[str, typer.Argument(metavar="USER", help="The user the key belongs to.")],
    name: Annotated[Optional[str], typer.Option("--name", metavar="NAME", show_default=False,
                                                help="A name to list and revoke it by [default: USER].")] = None,
    db: DbOpt = None,
) -> None:
    """A new API key for an existing user, printed once."""
    from ..server.store import BadInput, new_api_key

    key = new_api_key()
    with _Writing(db) as store:
        row = store.user_row(user)
        if row is None:
            raise BadInput(f"no user {user!r}: see `wbgql server users list`, or add one with `wbgql server users add`")
        store.add_api_key(key, name or user, user_id=row["id"])
    _print_key(key, user)


@keys_app.command("list", epilog=examples("wbgql server keys list", "wbgql server keys list --json"))
def keys_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Every key's id, name, user and creation time (the keys themselves are not stored)."""
    store = _open(db)
    with store.reading():
        rows = store.keys_list()
    store.close()
    _rows(rows, ["id", "name", "user", "created_at"], as_json)


@keys_app.command("revoke", epilog=examples("wbgql server keys revoke laptop", "wbgql server keys revoke 3"))
def keys_revoke(
    key: Annotated[str, typer.Argument(metavar="NAME|ID", help="A key's name (every key of that name) or id.")],
    db: DbOpt = None,
) -> None:
    """Revoke keys: a running server refuses them (401) from its next request."""
    from ..server.store import BadInput

    with _Writing(db) as store:
        revoked = store.revoke_key(key)
        if not revoked:
            raise BadInput(f"no key named {key!r} and none with that id: see `wbgql server keys list`")
    for row in revoked:
        sys.stderr.write(f"revoked key {row['id']} ({row['name']}, of {row['user']})\n")


@teams_app.command("add", epilog=examples("wbgql server teams add vision-lab --member alice --member bob"))
def teams_add(
    team: Annotated[str, typer.Argument(metavar="TEAM", help="The team's entity name.")],
    member: Annotated[Optional[List[str]], typer.Option(
        "--member", metavar="USER", show_default=False, help="An existing user to add (repeatable).")] = None,
    db: DbOpt = None,
) -> None:
    """Create a team (or add members to one): its members read and write its projects."""
    from ..server.store import BadInput

    _name(team, "team")
    with _Writing(db) as store:
        if store.user_row(team) is not None:
            raise BadInput(f"{team!r} is a user's own entity, not a team: choose another name")
        store.ensure_team(team)
        for user in member or []:
            row = store.user_row(user)
            if row is None:
                raise BadInput(f"--member {user}: no such user (add it with `wbgql server users add {user}`)")
            store.add_member(team, row["id"])
    sys.stderr.write(f"team {team}: {', '.join(member or []) or 'no members added'}\n")
