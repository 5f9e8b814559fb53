"""`bloomkit eval …`: the 46-language lm-eval suite and the results store."""

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from bloomkit.commands import (
    MergeOption,
    RunDirOption,
    SetOption,
    TaskOption,
    TasksOption,
    array_share,
    config_or_exit,
    open_run,
)
from bloomkit.config import ConfigError, validate
from bloomkit.console import console

app = typer.Typer(
    help="Evaluate a model in all 46 BLOOM languages with lm-eval; keep results reproducible.",
    no_args_is_help=True,
)

leaderboard_app = typer.Typer(
    help="Admit results, build the static multilingual leaderboard site, serve it locally.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def run(
    model: Annotated[
        Path | None,
        typer.Option(help="HF model folder or hub ORG/NAME; a checkpoint with --backend megatron."),
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="hf (default), megatron (a checkpoint) or endpoint.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible API root (…/v1) for --backend endpoint.")
    ] = None,
    tokenizer: Annotated[
        Path | None, typer.Option(help="Tokenizer folder or hub ORG/NAME (endpoint, megatron).")
    ] = None,
    suite: Annotated[str | None, typer.Option(help="Task group, e.g. bloom46.")] = None,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated task/group names (bloomkit or lm-eval).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most N documents per task.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="SIB-200 layout folder (default: the shipped sample).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split of --data-dir to score.")] = None,
    num_fewshot: Annotated[int | None, typer.Option(help="Override every task's shots.")] = None,
    apply_chat_template: Annotated[
        bool | None, typer.Option(help="Prompt through the model's chat template (tuned models).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="EvalConfig YAML (flags win).")] = None,
    run_dir: RunDirOption = Path("runs/eval"),
    overrides: SetOption = None,
    task: TaskOption = None,
    num_tasks: TasksOption = None,
    merge: MergeOption = False,
) -> None:
    """Score a model; write RUN/results.json (scores, per-doc values, provenance).

    Split over a job array: `--task I --num-tasks N` for each I (RUN/shares/), then `--merge`
    once (the Slurm `eval` stage does this from BLOOMKIT_TASK_ID/BLOOMKIT_NUM_TASKS).
    """
    from bloomkit.eval.array import score_share
    from bloomkit.eval.hub import resolve_hub_names
    from bloomkit.eval.runner import EvalConfig, ModelLoadError, run_eval
    from bloomkit.eval.tasks import UnknownTaskError

    share = array_share(task, num_tasks, merge, tasks_flag="--num-tasks")
    flags: dict[str, Any] = {
        "model": model, "backend": backend, "base_url": base_url, "tokenizer": tokenizer,
        "suite": suite, "limit": limit, "data_dir": data_dir,
        "split": split, "num_fewshot": num_fewshot,
        "apply_chat_template": apply_chat_template,
        "tasks": [t for t in tasks.split(",") if t] if tasks else None,
    }  # fmt: skip
    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items() if v is not None}
    if config is not None:
        cfg = config_or_exit(EvalConfig, config, overrides)
        cfg = _validate_or_exit(EvalConfig, cfg.model_dump(mode="json") | given)
    else:
        if tasks and suite is None:
            given["suite"] = None
        cfg = _validate_or_exit(EvalConfig, given, overrides)
    try:
        cfg = resolve_hub_names(cfg)
        if share is not None:
            done = score_share(cfg, open_run(run_dir, "eval run", cfg), *share)
            console.print(f"task {share[0]} of {share[1]}: {len(done['units'])} task(s) → "
                          f"{done['share']}", highlight=False, soft_wrap=True)  # fmt: skip
            return
        run_eval(cfg, open_run(run_dir, "eval run", cfg), merge=merge)
    except (UnknownTaskError, ModelLoadError, FileNotFoundError, ValueError) as err:
        raise _fail(str(err)) from None


def _validate_or_exit(model: Any, data: dict[str, Any], overrides: list[str] | None = None):
    """Validate flags (and ``--set`` overrides) into a config, or print the problems, exit 2."""
    from bloomkit.config import apply_overrides

    try:
        sources = apply_overrides(data, overrides or [])
        return validate(model, data, source="command line", override_sources=sources)
    except ConfigError as err:
        console.print(f"[bold red]invalid arguments[/] ({len(err.problems)} problem(s)):")
        for problem in err.problems:
            console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def verify(results: Annotated[Path, typer.Argument(help="A results.json.")]) -> None:
    """Check a results file against the schema and its content hash (exit 1 if edited)."""
    from bloomkit.eval.results import ResultsError, load

    try:
        record = load(results)
    except ResultsError as err:
        raise _fail(str(err), code=1) from None
    console.print(
        f"{results}: ok ({len(record.tasks)} tasks, sha256 {record.content_sha256[:12]}…)",
        highlight=False,
    )


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Baseline results.json.")],
    b: Annotated[Path, typer.Argument(help="Results to compare with it.")],
    alpha: Annotated[float, typer.Option(help="Significance level (Holm-adjusted).")] = 0.05,
) -> None:
    """Per-language differences B - A with p-values (paired bootstrap, else z-test)."""
    from bloomkit.console import summary_table
    from bloomkit.eval.compare import compare as compare_runs
    from bloomkit.eval.results import ResultsError, load

    try:
        ra, rb = load(a), load(b)
    except ResultsError as err:
        raise _fail(str(err), code=1) from None
    rows = [d.row() for d in compare_runs(ra, rb, alpha=alpha)]
    if not rows:
        raise _fail("the two runs share no task")
    summary_table(f"{b} − {a}", rows)
    significant = sum(r["significant"] for r in rows)
    console.print(f"{significant} of {len(rows)} differences significant at {alpha} (Holm)")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results.json.")],
    out: Annotated[
        Path | None, typer.Option(help="Heatmap PNG (default: beside the results).")
    ] = None,
) -> None:
    """Per-language table and a heatmap PNG grouped by family and resource level."""
    from bloomkit.eval.report import heatmap, print_table
    from bloomkit.eval.results import ResultsError, load

    try:
        record = load(results)
    except ResultsError as err:
        raise _fail(str(err), code=1) from None
    print_table(record, f"{results}")
    png = heatmap(record, out or results.with_name("heatmap.png"))
    console.print(f"heatmap: {png}", highlight=False)


@app.command()
def mirror(
    out: Annotated[Path, typer.Option(help="Mirror folder (tasks read it via mirror_dir).")] = Path(
        "runs/eval-mirror"
    ),
    tasks: Annotated[
        str, typer.Option(help="bloom-classic tasks or groups to mirror, comma-separated.")
    ] = "bloom-classic",
    source: Annotated[
        Path | None,
        typer.Option("--from", help="Folder of save_to_disk datasets (<hf_path>/<hf_name>)."),
    ] = None,
) -> None:
    """Snapshot the hub datasets of the classic tasks (xnli, xcopa, …) into a local mirror."""
    from bloomkit.eval import mirror as mirroring
    from bloomkit.eval.tasks import UnknownTaskError

    names = [n.strip() for n in tasks.split(",") if n.strip()]
    try:
        written = mirroring.mirror(out, names, source)
    except (UnknownTaskError, FileNotFoundError, ValueError) as err:
        raise _fail(str(err)) from None
    rows = sum(int(f["rows"]) for f in written.values())
    console.print(f"{out}: {len(written)} files, {rows} rows", highlight=False)
    console.print(
        f"score with: bloomkit eval run … (BLOOMKIT_MIRROR_DIR={out.resolve()}) or lm_eval … "
        f'--metadata \'{{"mirror_dir": "{out.resolve()}"}}\'',
        highlight=False, soft_wrap=True, markup=False,
    )  # fmt: skip


@leaderboard_app.command("submit")
def leaderboard_submit(
    result: Annotated[Path, typer.Argument(help="A results.json from `bloomkit eval run`.")],
    to: Annotated[Path, typer.Option("--to", help="The leaderboard's results folder.")],
    licence: Annotated[
        str | None,
        typer.Option(help="The model's licence (SPDX id or name) when its folder states none."),
    ] = None,
) -> None:
    """Verify a results file, record the model's licence and cards, add it to the folder."""
    from bloomkit.eval.leaderboard.submit import SubmitError, submit

    try:
        target = submit(result, to, licence=licence)
    except SubmitError as err:
        raise _fail(f"refused: {err}", code=1) from None
    console.print(f"{result}: accepted → {target}", highlight=False)


@leaderboard_app.command("build")
def leaderboard_build(
    results_dir: Annotated[Path, typer.Argument(help="Folder of results.json files (searched).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Site folder (replaced atomically).")],
    skip_invalid: Annotated[
        bool, typer.Option(help="List refused files on the page instead of failing.")
    ] = False,
) -> None:
    """Verify every results file and write the static site (index.html opens from file://)."""
    from bloomkit.eval.leaderboard.build import LeaderboardError, build_site

    try:
        data = build_site(results_dir, out, skip_invalid=skip_invalid)
    except LeaderboardError as err:
        raise _fail(str(err), code=1) from None
    for rejected in data["rejected"]:
        console.print(
            f"[yellow]rejected[/] {rejected['file']}: {rejected['reason']}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
    console.print(f"{len(data['models'])} model(s) → {out / 'index.html'}", highlight=False)


@leaderboard_app.command("serve")
@leaderboard_app.command("preview", hidden=True)
def leaderboard_serve(
    site: Annotated[Path, typer.Argument(help="A built site folder.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8000,
) -> None:
    """Serve the site on http://127.0.0.1:PORT/ until Ctrl-C (or SIGTERM)."""
    from bloomkit.eval.leaderboard.serve import make_server

    try:
        server = make_server(site, port)
    except (FileNotFoundError, OSError) as err:
        raise _fail(str(err)) from None
    for stop in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (`cmd &`)
        signal.signal(stop, signal.default_int_handler)
    console.print(f"serving {site} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopped")
