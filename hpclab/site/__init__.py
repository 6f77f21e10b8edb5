"""The lab website: the catalog as a static MkDocs site (``hpclab site build``), served
locally (``hpclab site serve``) and kept current while runs train (``hpclab watch
--site``). A consumer layer: it reads the store and the catalog, which never import it.

Modules: :mod:`~hpclab.site.data` (the catalog, read once), :mod:`~hpclab.site.series`
(per-run metric JSON, min/max downsampled), :mod:`~hpclab.site.details`,
:mod:`~hpclab.site.pages`, :mod:`~hpclab.site.graph`, :mod:`~hpclab.site.research`
(the pages, HTML through :mod:`~hpclab.site.html`), :mod:`~hpclab.site.registry` (the one
list of pages the site and its navigation come from), :mod:`~hpclab.site.charts` (Altair
specs), :mod:`~hpclab.site.build` (MkDocs in-process), :mod:`~hpclab.site.live` (the watch
hook), :mod:`~hpclab.site.serve`, :mod:`~hpclab.site.report` (standalone HTML/PDF),
:mod:`~hpclab.site.chromium` (headless Chromium over the DevTools protocol, for tests,
benchmarks and PDF).
"""
