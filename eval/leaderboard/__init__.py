"""The static multilingual leaderboard: verified results files in, a self-contained site out.

:mod:`.submit` admits one results file into the leaderboard's folder with a sidecar of what
:mod:`.cards` reads from the model folder (licence, model card summary, data card);
:mod:`.build` turns a folder of ``results.json`` records into ``index.html`` (data inlined, so
it opens from ``file://``), ``data.json``, ``leaderboard.csv``, ``style.css``, ``app.js`` and a
copy of every accepted record under ``results/``; :mod:`.serve` serves it on localhost.
"""
