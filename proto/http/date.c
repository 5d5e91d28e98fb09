/* The Date header, formatted once per second per thread: a worker's
 * responses in the same second copy the same 37 bytes. */
#include "http_int.h"

#include <string.h>
#include <time.h>

static _Thread_local struct {
	time_t sec;
	char line[HTTP_DATE_LINE_LEN + 1];
} cache = {-1, ""};

static void two(char *o, int v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
}

void rlt__http_date(char *out)
{
	struct timespec ts;
	/* The coarse clock is a vDSO read of the last tick: no system call. */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec != cache.sec) {
		static const char days[] = "SunMonTueWedThuFriSat";
		static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		/* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" (RFC 9110 5.6.7) */
		char *o = cache.line;
		memcpy(o, "Date: ", 6);
		memcpy(o + 6, days + 3 * tm.tm_wday, 3);
		memcpy(o + 9, ", ", 2);
		two(o + 11, tm.tm_mday);
		o[13] = ' ';
		memcpy(o + 14, months + 3 * tm.tm_mon, 3);
		o[17] = ' ';
		int y = tm.tm_year + 1900;
		two(o + 18, y / 100 % 100);
		two(o + 20, y % 100);
		o[22] = ' ';
		two(o + 23, tm.tm_hour);
		o[25] = ':';
		two(o + 26, tm.tm_min);
		o[28] = ':';
		two(o + 29, tm.tm_sec);
		memcpy(o + 31, " GMT\r\n", 6);
		cache.sec = ts.tv_sec;
	}
	memcpy(out, cache.line, HTTP_DATE_LINE_LEN);
}
