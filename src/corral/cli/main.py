"""Entry point of the ``corral`` command."""

from __future__ import annotations

import typer

from corral.cli import client, cost, deploy, events, keys, logs, metrics, runtimes, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="corral",
    help="AWS Lambda Managed Instances, self-hosted. Point boto3 or the AWS CLI at "
    "`corral serve` with --endpoint-url.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("invoke")(client.invoke)
app.command("status")(client.status)
app.command("logs")(logs.logs)
app.command("metrics")(metrics.metrics)
app.add_typer(runtimes.app, name="runtimes")
app.add_typer(keys.app, name="keys")
app.add_typer(cost.app, name="cost")
app.add_typer(events.app, name="events")
app.command("deploy")(deploy.deploy)
app.add_typer(deploy.stacks_app, name="stacks")


def main() -> None:
    app()
