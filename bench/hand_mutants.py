"""Mutants applied by hand where mutmut cannot go (issue 16, item 2; see bench/mutation-survivors.md).

mutmut 3 never mutates a decorated function (``atomic_path`` and ``atomic_output`` are
``@contextlib.contextmanager``), and its copy of ``rnaloc_tools/fileio.py`` fails to import
(``KeyError: '_mutmut_orig'``), so the atomic-writing and same-file checks are mutated here, one
at a time in a scratch copy, with bench/named_mutants.py's runner, against tests/test_mutants.py;
and two mutmut survivors of ``merge_windows``, to show the new test fails on them.

    python bench/hand_mutants.py        # one line per mutant: caught (by which test) or SURVIVED
"""

import sys

from named_mutants import main

T = "tests/test_mutants.py::"
F = "tests/test_fileio.py::"
H = "tests/test_hardening.py::"
MUTATIONS = [
    ("atomic_path yields the destination itself", "rnaloc_tools/fileio.py",
     r"with _fresh_file_beside\(path\) as tmp:", "with contextlib.nullcontext(path) as tmp:",
     [T + "test_atomic_path_renames_a_temporary_file_beside_the_destination"]),
    ("atomic_path never renames the temporary file", "rnaloc_tools/fileio.py",
     r"(else:\n +interrupts\.check\(\)[^\n]*\n +)os\.replace\(tmp, path\)", r"\1os.link(tmp, tmp + '.kept')",
     [T + "test_atomic_path_renames_a_temporary_file_beside_the_destination"]),
    ("atomic_path leaves the temporary file on failure", "rnaloc_tools/fileio.py",
     r"(except BaseException:\n +if tmp is not None:\n +with contextlib\.suppress\(OSError\):\n +)remove\(tmp\)",
     r"\1pass",
     [T + "test_atomic_output_failure_keeps_the_previous_file_and_no_temporary"]),
    ("_fresh_file without O_EXCL (takes over an existing file of the same name)", "rnaloc_tools/fileio.py",
     r"os\.O_WRONLY \| os\.O_CREAT \| os\.O_EXCL", "os.O_WRONLY | os.O_CREAT",
     [F + "test_a_taken_temporary_name_is_skipped_not_removed"]),
    ("_fresh_entry records the name only once the file or folder is made (as mkstemp, mkdtemp)",
     "rnaloc_tools/fileio.py", r"( +)make\(tmp\)\n", r"\1tmp = ((made := tmp), (tmp := None), make(made), made)[-1]\n",
     [F + "test_an_interrupt_as_a_temporary_file_is_made_leaves_nothing"]),
    ("temporary_folder not removed when the block ends", "rnaloc_tools/fileio.py",
     r"(finally:\n +)shutil\.rmtree\(tmp, ignore_errors=True\)", r"\1pass",
     [F + "test_a_temporary_folder_is_private_and_removed_with_its_files_however_the_block_ends"]),
    # an interrupt whose exception Python dropped (in a finaliser, an import callback): rnaloc_tools/interrupts.py
    ("a transaction commits after a recorded interrupt", "rnaloc_tools/fileio.py",
     r"if interrupts\.pending\(\):  # its KeyboardInterrupt", "if False:  # its KeyboardInterrupt",
     [H + "test_an_interrupt_whose_exception_is_dropped_still_exits_130_and_writes_nothing"]),
    ("atomic_path renames after a recorded interrupt", "rnaloc_tools/fileio.py",
     r"interrupts\.check\(\)  # never put in place", "pass  # never put in place",
     [H + "test_an_atomic_write_outside_a_tool_is_not_put_in_place_after_an_interrupt"]),
    ("the CLI runs the tool after an interrupt recorded while loading", "rnaloc_tools/cli/__init__.py",
     r"if interrupts\.pending\(\):\n( +)sys\.exit\(130\)  # came while", r"if False:\n\1sys.exit(130)  # came while",
     [H + "test_sigterm_while_loading_whose_exit_is_dropped_still_exits_130"]),
    ("the CLI exits 0 after an interrupt whose exit was dropped (--help)", "rnaloc_tools/cli/__init__.py",
     r"if exc\.code in \(0, None\) and interrupts\.pending\(\):", "if False:",
     [H + "test_an_interrupt_dropped_while_help_is_printed_exits_130"]),
    ("a tool writing to stdout commits after a recorded interrupt", "rnaloc_tools/fileio.py",
     r"if interrupts\.pending\(\):  # its KeyboardInterrupt", "if False:  # its KeyboardInterrupt",
     [H + "test_an_interrupt_on_stdout_output_still_exits_130"]),
    ("atomic_path keeps the temporary file's 0600 mode", "rnaloc_tools/fileio.py",
     r"os\.chmod\(tmp, 0o666 & ~_umask\(\)\)", "pass",
     [T + "test_atomic_path_renames_a_temporary_file_beside_the_destination"]),
    ("atomic_output writes .gz as plain text", "rnaloc_tools/fileio.py",
     r'if os\.fspath\(path\)\.endswith\("\.gz"\):', "if False:",
     [T + "test_atomic_output_gz_and_binary"]),
    ("atomic_output text mode without newline='\\n'", "rnaloc_tools/fileio.py",
     r'open\(tmp, mode, encoding="utf-8", newline="\\n"\)', 'open(tmp, mode, encoding="utf-8", newline="\\\\r\\\\n")',
     [T + "test_atomic_output_gz_and_binary"]),
    # two mutmut survivors of embed.merge_windows, confirmed killed here (bench/mutation-survivors.md)
    ("merge_windows: dim read from the second window", "rnaloc_tools/embed.py",
     r"dim = parts\[0\]\[2\]\.shape\[1\]", "dim = parts[1][2].shape[1]",
     [T + "test_merge_windows_averages_overlaps_by_hand"]),
    ("merge_windows: count of width 2", "rnaloc_tools/embed.py",
     r"count = np\.zeros\(\(length, 1\)", "count = np.zeros((length, 2)",
     [T + "test_merge_windows_averages_overlaps_by_hand"]),
    ("same_file: two missing files are the same", "rnaloc_tools/fileio.py",
     r"return ia is not None and ia == ib", "return ia == ib",
     [T + "test_same_file_by_name_by_link_and_not_for_distinct_files"]),
    ("same_file: no (device, inode) comparison", "rnaloc_tools/fileio.py",
     r"return ia is not None and ia == ib", "return False",
     [T + "test_same_file_by_name_by_link_and_not_for_distinct_files"]),
    ("same_file: no resolved-name comparison", "rnaloc_tools/fileio.py",
     r"if os\.path\.realpath\(a\) == os\.path\.realpath\(b\):", "if False:",
     [T + "test_same_file_by_name_by_link_and_not_for_distinct_files"]),
    ("_identity: the device twice", "rnaloc_tools/fileio.py",
     r"return \(st\.st_dev, st\.st_ino\)", "return (st.st_dev, st.st_dev)",
     [T + "test_same_file_by_name_by_link_and_not_for_distinct_files"]),
]



if __name__ == "__main__":
    sys.exit(main(MUTATIONS))
