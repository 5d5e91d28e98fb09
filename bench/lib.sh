# Shell helpers shared by the bench/ scripts (sourced, not run).

# usreq FILE COL: CPU microseconds per request, "median (min-max)" over the
# rounds in FILE (one line per round: requests/s first, column COL the CPU%
# of the side measured); "-" when FILE is empty.
usreq() {
	[ -s "$1" ] || { echo "-"; return; }
	awk -v c="$2" '$1 > 0 {printf "%.2f\n", $c / 100 * 1e6 / $1}' "$1" | sort -g | awk '{a[NR]=$1} END {
		if (NR == 0) { print "-"; exit }
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.2f (%.2f-%.2f)", m, a[1], a[NR] }'
}
