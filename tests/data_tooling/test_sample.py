"""The shipped sample: a faithful, catalogued slice of the shared data."""

import json
import shutil

import pytest

from bloomkit.data_tooling.catalogue import load_catalogue, verify_files
from bloomkit.data_tooling.languages import language_codes
from bloomkit.data_tooling.sample import (
    DEV_ROWS,
    TRAIN_ROWS,
    read_tsv,
    sample_dir,
    write_raw_corpus,
)


def test_every_sample_file_is_catalogued_with_a_licence():
    sample = sample_dir()
    catalogue = load_catalogue(sample / "catalogue.yaml")
    assert verify_files(catalogue, sample) == []
    listed = {f for source in catalogue.sources for f in source.files}
    shipped = {str(p.relative_to(sample)) for p in sample.rglob("*") if p.is_file()} - {
        "catalogue.yaml"
    }
    assert shipped == listed, "every shipped file belongs to a catalogued source"
    assert {s.licence for s in catalogue.sources} == {"CC-BY-SA-4.0", "PSF-2.0", "Apache-2.0"}


def test_sample_is_a_slice_of_sib200(shared_data):
    sample = sample_dir()
    assert sorted(p.name for p in (sample / "sib200").iterdir() if p.is_dir()) == sorted(
        language_codes()
    )
    for lang in language_codes():
        for split, rows in (("train", TRAIN_ROWS), ("dev", DEV_ROWS)):
            shipped = read_tsv(sample / "sib200" / lang / f"{split}.tsv")
            original = read_tsv(shared_data / "sib200" / lang / f"{split}.tsv")
            assert shipped == original[:rows]


def test_raw_corpus_refuses_a_tampered_sample(tmp_path):
    copy = tmp_path / "sample"
    shutil.copytree(sample_dir(), copy)
    (copy / "sib200" / "fr" / "train.tsv").write_text("index_id\tcategory\ttext\n1\tx\tfaux\n")
    with pytest.raises(ValueError, match=r"sib200/fr/train.tsv: content differs"):
        write_raw_corpus(copy, tmp_path / "raw")
    assert not (tmp_path / "raw" / "sib200.jsonl").exists()


def test_raw_corpus_documents(tmp_path):
    counts = write_raw_corpus(sample_dir(), tmp_path / "raw")
    docs = [json.loads(line) for line in (tmp_path / "raw" / "sib200.jsonl").open()]
    assert counts == {"documents": len(docs), "code_files": 8}
    assert len({d["id"] for d in docs}) == len(docs)
    assert {d["source"] for d in docs} == {"sib200-flores"}
    assert sorted((tmp_path / "raw" / "code").iterdir())[0].name == "bisect.py"
