"""A `{local = NAME}` entry is sized by its training file (its line count; an Alpaca JSON list
file: its items), as docs/data.md says, so a size-proportional mixture of local files needs no
cap (it used to be refused "size unknown offline; give a cap")."""
import json

from flan_jax.data.mixing import mixtures

ROW = {"instruction": "Say hi.", "input": "", "output": "hi"}


def test_local_entries_are_sized_by_their_files(tmp_path):
    (tmp_path / "three_train.jsonl").write_text((json.dumps(ROW) + "\n") * 3 + "\n")  # a blank line is no row
    (tmp_path / "one_train.json").write_text(json.dumps([ROW], indent=2))  # 5 lines, 1 item
    path = tmp_path / "sizes.toml"
    path.write_text(f"""
[local.sz_three]
file_pattern = "{tmp_path}/three_{{split}}.jsonl"
format = "alpaca"
splits = ["train"]

[local.sz_one]
file_pattern = "{tmp_path}/one_{{split}}.json"
format = "alpaca"
splits = ["train"]

[mixture.sz_m]
include = [{{ local = "sz_three" }}, {{ local = "sz_one" }}]
""")
    decls, _ = mixtures.load_files([path])
    leaves = {leaf.task: leaf for leaf in mixtures.resolve("sz_m", decls)}
    # examples-proportional, no cap: 3 and 1 examples -> shares 3/4 and 1/4
    assert {t: (leaf.share, leaf.num_examples, leaf.size_source) for t, leaf in leaves.items()} == {
        "local.sz_three:zs_noopt": (0.75, 3, "local_file"), "local.sz_one:zs_noopt": (0.25, 1, "local_file")}
