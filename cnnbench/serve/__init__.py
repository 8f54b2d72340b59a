"""A hosted leaderboard: ``cnnbench serve``, where participants submit over HTTP against hidden labels.

A thin face over the library, like the CLI: predictions are read by
:func:`cnnbench.board.predictions.load_predictions` and checked by :func:`cnnbench.board.predictions.check_predictions`,
public copies written by :func:`cnnbench.board.public.export_public`, runs kept and ranked by
:mod:`cnnbench.board.store`, pages drawn by :func:`cnnbench.board.render.render_html`. What is new
here is only what a shared board needs on top: a board folder (:mod:`.boards`), participants'
tokens, daily limits and the public/private split of the test set (:mod:`.store`,
:mod:`.scoring`), and the HTTP layer (:mod:`.app`, :mod:`.pages`, :mod:`.client`).

See docs/serve.md.
"""
