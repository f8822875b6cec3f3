#!/bin/sh
# shell_test.sh - end-to-end test of apbundle-shell (being written).
exit 77
