"""A hosted leaderboard: ``cnnbench serve``, where participants submit over HTTP against hidden labels.

A thin face over the library, like the CLI: predictions are read by
:func:`cnnbench.predictions.load_predictions` and checked by :func:`cnnbench.predictions.check_predictions`,
public copies written by :func:`cnnbench.public.export_public`, runs kept and ranked by
:mod:`cnnbench.leaderboard`, pages drawn by :func:`cnnbench.report.render_html`. What is new
here is only what a shared board needs on top: a board folder (:mod:`.boards`), participants'
tokens, daily limits and the public/private split of the test set (:mod:`.store`,
:mod:`.scoring`), and the HTTP layer (:mod:`.app`, :mod:`.pages`, :mod:`.client`).

See docs/serve.md.
"""
