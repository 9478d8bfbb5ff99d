"""CLI verbs for who may do what: users, roles and API tokens."""

from __future__ import annotations

import click

from engine.cli import Workspace, cli, echo_json, pass_ws
from engine.db import write_transaction


@cli.group("user")
def user_group() -> None:
    """Users of the web app and API."""


@user_group.command("create")
@click.argument("name")
@click.option("--role", required=True,
              help="viewer, marketer, admin or a custom role (nudgeflow role list).")
@pass_ws
def user_create(ws: Workspace, name: str, role: str) -> None:
    """Create a user; the password is asked twice on a terminal, else read from stdin."""
    import sys

    from engine.users import create_user

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    with write_transaction(ws.engine) as conn:
        create_user(conn, name, role, password)
    click.echo(f"user {name} created ({role})")


@user_group.command("set-role")
@click.argument("name")
@click.argument("role")
@pass_ws
def user_set_role(ws: Workspace, name: str, role: str) -> None:
    """Give a user another role."""
    from engine.users import set_role

    with write_transaction(ws.engine) as conn:
        set_role(conn, name, role)
    click.echo(f"user {name} is now {role}")


@cli.group("role")
def role_group() -> None:
    """Roles: named sets of permissions (viewer, marketer and admin are built in)."""


@role_group.command("create")
@click.argument("name")
@click.option("--permissions", required=True, help="Comma-separated: view,campaigns.edit,...")
@pass_ws
def role_create(ws: Workspace, name: str, permissions: str) -> None:
    """Create a custom role."""
    from engine.access.roles import create_role

    with write_transaction(ws.engine) as conn:
        made = create_role(conn, name, permissions, where="--permissions")
    click.echo(f"role {name} created: {', '.join(made['permissions'])}")


@role_group.command("set")
@click.argument("name")
@click.option("--permissions", required=True, help="Comma-separated; replaces the role's set.")
@pass_ws
def role_set(ws: Workspace, name: str, permissions: str) -> None:
    """Replace a custom role's permissions."""
    from engine.access.roles import update_role

    with write_transaction(ws.engine) as conn:
        made = update_role(conn, name, permissions, where="--permissions")
    click.echo(f"role {name}: {', '.join(made['permissions'])}")


@role_group.command("delete")
@click.argument("name")
@pass_ws
def role_delete(ws: Workspace, name: str) -> None:
    """Delete a custom role that no user holds."""
    from engine.access.roles import delete_role

    with write_transaction(ws.engine) as conn:
        delete_role(conn, name)
    click.echo(f"role {name} deleted")


@role_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ws
def role_list(ws: Workspace, as_json: bool) -> None:
    """Every role with its permissions and how many users hold it."""
    from engine.access.roles import list_roles

    with ws.engine.connect() as conn:
        roles = list_roles(conn)
    if as_json:
        echo_json([{k: v for k, v in r.items() if k != "created_at"} for r in roles])
        return
    for r in roles:
        kind = "built-in" if r["built_in"] else "custom"
        click.echo(f"{r['name']} ({kind}, {r['users']} user(s)): {', '.join(r['permissions'])}")


@cli.group("token")
def token_group() -> None:
    """API tokens."""


@token_group.command("create")
@click.option("--user", "user_name", required=True)
@click.option("--name", "label", help="A label to recognise the token by.")
@pass_ws
def token_create(ws: Workspace, user_name: str, label: str | None) -> None:
    """Create a bearer token; it is printed once, alone on the last line."""
    from engine.users import create_token

    with write_transaction(ws.engine) as conn:
        token = create_token(conn, user_name, label)
    click.echo(f"token for {user_name} (store it now; it is not shown again):")
    click.echo(token)
