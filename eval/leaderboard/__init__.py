"""The static multilingual leaderboard: verified results files in, a self-contained site out.

:mod:`.build` turns a folder of ``results.json`` records into ``index.html`` (data inlined, so
it opens from ``file://``), ``data.json``, ``leaderboard.csv``, ``style.css``, ``app.js`` and a
copy of every accepted record under ``results/``; :mod:`.serve` previews it on localhost.
"""
