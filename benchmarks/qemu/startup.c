/* startup.c -- bare-metal start-up for QEMU's mps2-an386 (Cortex-M4F) and Arm semihosting.
 *
 * Vector table (initial stack pointer, reset, and a catch-all for the faults), a reset
 * handler that copies .data, zeroes .bss, enables the FPU (CPACR CP10/CP11 full access)
 * and calls main(), then exits QEMU through semihosting with main's return value.
 * Output goes through semihosting SYS_WRITE0; run QEMU with
 * -semihosting-config enable=on,target=native. */
#include <stdint.h>

extern uint32_t _data_load[], _data_start[], _data_end[], _bss_start[], _bss_end[];
extern uint32_t _stack_top[];
int main(void);

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023

static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihost_puts(const char *text)
{
    semihost(SYS_WRITE0, (void *)text);
}

__attribute__((noreturn)) void semihost_exit(int status)
{
    /* 32-bit semihosting: SYS_EXIT takes the reason code itself; QEMU exits with status 0
     * for ApplicationExit, 1 otherwise. */
    semihost(SYS_EXIT, (void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                       : ADP_STOPPED_RUNTIME_ERROR_UNKNOWN));
    for (;;) {
    }
}

__attribute__((noreturn)) void reset_handler(void)
{
    uint32_t *src = _data_load;
    uint32_t *dst;
    for (dst = _data_start; dst < _data_end;) {
        *dst++ = *src++;
    }
    for (dst = _bss_start; dst < _bss_end;) {
        *dst++ = 0;
    }
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    semihost_exit(main());
}

__attribute__((noreturn)) static void fault_handler(void)
{
    semihost_puts("fault\n");
    semihost_exit(1);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)_stack_top,
    reset_handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
};
