"""--help that teaches: options grouped (connection, window, output, auth) and an Examples section.

click has no option groups; ``GroupedCommand`` sorts a command's options by the ``GROUPS``
table (by parameter name; an option in no group is listed under "Options") and prints the
command's ``EXAMPLES`` after them.  tests/test_readme_cli.py holds README's CLI reference to
the same commands and options.
"""

from __future__ import annotations

import click

GROUPS: dict[str, tuple[str, ...]] = {
    "Connection": ("namespace", "all_namespaces", "dump", "kubeconfig", "context", "request_timeout", "prometheus_url",
                   "flagger_namespace", "flagger_selector", "timeout", "concurrency", "compression", "s3_endpoint",
                   "cluster"),
    "Window": ("start", "end", "lead", "tail", "max_window", "at_text"),
    "Auth": ("prometheus_token", "prometheus_token_file", "prometheus_user", "prometheus_ca_file",
             "prometheus_insecure_skip_verify", "headers", "key"),
    "Output": ("output", "fmt", "as_json", "out", "quiet", "postmortem", "template_dir"),
}  # fmt: skip

EXAMPLES: dict[str, tuple[str, ...]] = {
    "collect": (
        "evidence collect podinfo -n shop --prometheus http://localhost:9090",
        "evidence collect canary/podinfo --context prod -o json        # the context's namespace",
        "evidence collect podinfo.shop --from-dump ./dump --out s3://audit/evidence",
    ),
    "list": (
        "evidence list                     # the kubeconfig context's namespace",
        "evidence get -A -o wide --out ./bundles",
        "evidence list -n shop --from-dump ./dump -o json",
    ),
    "show": ("evidence show bundles/shop_podinfo_*", "evidence show BUNDLE -o yaml"),
    "evaluate": ("evidence evaluate BUNDLE", "evidence evaluate BUNDLE --policy policy.yaml -o json | jq .verdict"),
    "render": ("evidence render BUNDLE --format all --out reports/",),
    "verify": ("evidence verify BUNDLE --key release.pub", "evidence verify s3://audit/evidence -o json"),
    "preflight": ("evidence preflight podinfo -n shop --prometheus http://localhost:9090 --probe-webhooks",),
    "keygen": ("evidence keygen release      # release.key, release.pub",),
    "sign": ("evidence sign BUNDLE --key release.key",),
    "push": ("evidence push BUNDLE s3://audit/evidence --retain-until 2033-01-01",),
    "history": (
        "evidence history s3://audit/evidence -n shop --outcome rolled_back",
        "evidence history ./archive --summary -o json",
    ),
    "check": ("evidence policy check policy.yaml",),
    "default": ("evidence policy default > policy.yaml",),
    "schema": ("evidence policy schema > policy.schema.json",),
    "version": ("evidence version -o json",),
    "completion": ("source <(evidence completion bash)",),
    "watch": (
        "evidence watch --store /var/lib/evidence --prometheus http://prometheus:9090 --listen 0.0.0.0:8080 -A",
        "evidence watch --store s3://audit/evidence --journal /journal --sign-key /keys/evidence.key --notify https://hooks.slack.com/services/…",
    ),
}


def _group_of(name: str | None) -> str:
    return next((g for g, names in GROUPS.items() if name in names), "Options")


class GroupedCommand(click.Command):
    """A command whose --help lists options by group, then Examples."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {g: [] for g in (*GROUPS, "Options")}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is None:
                continue
            if isinstance(param.envvar, str) and param.envvar not in record[1]:
                record = (record[0], f"{record[1]}  [env: {param.envvar}]".strip())
            groups[_group_of(param.name)].append(record)
        for title in ("Connection", "Window", "Auth", "Output", "Options"):
            if groups[title]:
                with formatter.section(f"{title} options" if title != "Options" else "Options"):
                    formatter.write_dl(groups[title])

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        examples = EXAMPLES.get(self.name or "", ())
        if examples:
            with formatter.section("Examples"):
                for line in examples:
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")
        super().format_epilog(ctx, formatter)
