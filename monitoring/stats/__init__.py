"""The statistics engine: pure numpy/scipy, no Django. Functions take arrays, return dataclasses."""
