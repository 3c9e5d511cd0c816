#!/bin/sh
# Every benchmark of issue 8, one after the other, with the figures of
# bench/README.md; the output goes to the terminal and to $OUT.
# Run by hand: sh bench/run_all.sh   (about 15 minutes on 2 cores)
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/zwms-bench-results-$(date +%Y%m%d-%H%M).txt}
{
  date; uptime
  python3 bench/smtp_load.py --sizes 1024,102400 --clients 1,10,50 --repeat 3
  python3 bench/smtp_load.py --sizes 1024 --clients 500 --per-conn 1 --messages 2000
  python3 bench/smtp_load.py --sizes 1024 --clients 500 --per-conn 1 --messages 2000 \
      --backlog 1024 --only zwms
  python3 bench/pop3_load.py --users 10 --messages 1000 --size 10240 --repeat 3
  python3 bench/queue_load.py --messages 1000 --list 10000
  python3 bench/web_ttfb.py --messages 50000 --accounts 100000 --requests 20
  python3 bench/memory.py --connections 1000
  date; uptime
} 2>&1 | tee "$OUT"
