"""Benchmark suite: readers for published benchmark files and multiple-choice scoring."""
