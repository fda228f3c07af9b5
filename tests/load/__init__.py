"""Tests of the load and deliver stage: the database store and the provincial files."""
