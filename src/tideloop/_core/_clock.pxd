# The loop's clock, for the compiled build only (no .py twin: loop.py calls it only when
# compiled and uses time.monotonic otherwise; see ``_NATIVE_CLOCK`` there).
#
# tideloop_monotonic: CLOCK_MONOTONIC as float seconds, the very clock time.monotonic() reads
# on Linux, without a Python call; TIDELOOP_HAVE_NATIVE_CLOCK is 0 elsewhere, and then nobody
# calls it.

cdef extern from *:
    """
    #if defined(__linux__)
    #include <time.h>
    #define TIDELOOP_HAVE_NATIVE_CLOCK 1
    static inline double tideloop_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    #else
    #define TIDELOOP_HAVE_NATIVE_CLOCK 0
    static double tideloop_monotonic(void) { return -1.0; }
    #endif
    """
    const bint TIDELOOP_HAVE_NATIVE_CLOCK
    double tideloop_monotonic()
