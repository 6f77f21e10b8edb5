"""``hpclab site build|serve|report``: the lab website."""

from __future__ import annotations

from pathlib import Path

import click

from hpclab.store import Store

OUT_HELP = "Site directory (default: <store>/.site); the HTML is DIR/html."


@click.group()
def site() -> None:
    """The lab website: a static MkDocs site built from the catalog.

    Example: hpclab site build && hpclab site serve
    """


@site.command()
@click.option("--out", type=click.Path(file_okay=False), default=None, metavar="DIR", help=OUT_HELP)
@click.pass_obj
def build(store: Store, out: str | None) -> None:
    """Build the website from the catalog (run hpclab index or watch first).

    Example: hpclab --store /shared/hpclab site build --out /srv/www/lab
    """
    from hpclab.site.build import build as build_site

    if not store.catalog_manifest.exists():  # never indexed: not an empty site, index first
        from hpclab.catalog.indexer import Indexer

        click.echo(f"store {store.root} has no catalog yet: indexing it first", err=True)
        with Indexer(store) as ix:
            ix.index()
    report = build_site(store, Path(out) if out else None)
    click.echo(
        f"built {report.pages} pages and {report.runs} runs' data in {report.seconds:.1f} s: "
        f"{report.html}"
    )
    click.echo("open it with: hpclab site serve (charts read data files, which needs HTTP)")


@site.command()
@click.option("--out", type=click.Path(file_okay=False), default=None, metavar="DIR", help=OUT_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--watch/--no-watch",
    default=False,
    help="Also index the store and keep the site current (hpclab watch --site, in here).",
)
@click.pass_obj
def serve(store: Store, out: str | None, host: str, port: int, watch: bool) -> None:
    """Serve the website over HTTP (builds it first if needed); Ctrl-C stops.

    Example: hpclab site serve --port 8000 --watch
    """
    import threading

    from hpclab.site.build import build as build_site
    from hpclab.site.layout import SiteLayout
    from hpclab.site.serve import make_server, serve_in_thread, url_of

    site_dir = Path(out).absolute() if out else store.site_dir
    layout = SiteLayout(site_dir)
    if not layout.built():
        click.echo(f"building the site in {site_dir} ...")
        build_site(store, site_dir)
    server = make_server(layout.html, host, port)
    serve_in_thread(server)
    click.echo(f"serving {layout.html} at {url_of(server)} (Ctrl-C stops)")
    stop = threading.Event()
    try:
        if watch:
            from hpclab.catalog.watch import Watcher
            from hpclab.site.live import LiveSite

            hook = LiveSite(store, site_dir, log=click.echo)
            watcher = Watcher(store, site_hook=hook)
            click.echo(f"watching {store.root} ({watcher.mode}); the site follows")
            watcher.run(stop)
        else:
            stop.wait()
    except KeyboardInterrupt:
        stop.set()
    finally:
        server.shutdown()


@site.command()
@click.argument("ident", metavar="SWEEP_OR_HYPOTHESIS")
@click.option(
    "--out",
    "-o",
    type=click.Path(),  # checked by export(): one "hpclab: error:" line, as for every error
    required=True,
    help="report.html (standalone) or report.pdf (printed by headless Chromium), in an"
    " existing directory.",
)
@click.option(
    "--paper",
    type=click.Choice(["a4", "letter"]),
    default="a4",
    show_default=True,
    help="Page size when printed (the PDF's pages).",
)
@click.pass_obj
def report(store: Store, ident: str, out: str, paper: str) -> None:
    """Export one sweep's or hypothesis's report as standalone HTML or PDF (SVG charts).

    Example: hpclab site report sweep-20261122-143501-k3x9 --out sweep.pdf
    """
    from hpclab.site.report import export

    path = export(store, ident, Path(out), paper=paper)
    click.echo(f"wrote {path}")
