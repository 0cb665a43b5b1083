/* bench_main.c -- the guest program of benchmarks/qemu_calibrate.py.
 *
 * bench_data.h (written by the script) holds the fixed input (a raw window with a feature
 * block, else the network's float inputs), the class edgeloop's numpy reference predicts for
 * it, and BENCH_REPEAT. The program runs the self-test and one checked prediction, then
 * marks (bench_mark, whose execution the counting plugin watches) three regions:
 *   region 1: BENCH_REPEAT x edgeloop_model_predict(input, scores)
 *   region 2: BENCH_REPEAT x edgeloop_features_compute(input, features) (empty without)
 * and prints "selftest <rc> class <c> expected <e>" through semihosting. */
#include "bench_data.h"
#include "model.h"
#if BENCH_HAS_FEATURES
#include "features.h"
#endif
#include <stdint.h>

void semihost_puts(const char *text);

__attribute__((noinline, noipa)) void bench_mark(void)
{
    __asm__ volatile("" ::: "memory");
}

static char *put_int(char *p, int value)
{
    char digits[12];
    int n = 0;
    unsigned u = value < 0 ? 0u - (unsigned)value : (unsigned)value;
    if (value < 0) {
        *p++ = '-';
    }
    do {
        digits[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    while (n > 0) {
        *p++ = digits[--n];
    }
    return p;
}

static char *put_str(char *p, const char *s)
{
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

float bench_scores[EDGELOOP_MODEL_OUTPUTS];
#if BENCH_HAS_FEATURES
float bench_features[EDGELOOP_FEATURES_COUNT];
#endif
volatile int bench_sink;

int main(void)
{
    char line[96];
    char *p = line;
    int selftest = edgeloop_model_init();
    int cls = edgeloop_model_predict_class(bench_input);
    int r;
    bench_mark();
    for (r = 0; r < BENCH_REPEAT; ++r) {
        bench_sink = edgeloop_model_predict(bench_input, bench_scores);
    }
    bench_mark();
#if BENCH_HAS_FEATURES
    for (r = 0; r < BENCH_REPEAT; ++r) {
        bench_sink = edgeloop_features_compute(bench_input, bench_features);
    }
#endif
    bench_mark();
    p = put_str(p, "selftest ");
    p = put_int(p, selftest);
    p = put_str(p, " class ");
    p = put_int(p, cls);
    p = put_str(p, " expected ");
    p = put_int(p, BENCH_EXPECTED_CLASS);
    *p++ = '\n';
    *p = '\0';
    semihost_puts(line);
    return selftest == 0 && cls == BENCH_EXPECTED_CLASS ? 0 : 1;
}
