/* Writes through a NULL pointer: the process dies of SIGSEGV (exit status 139). */
int main(void) {
    *(volatile int *)0 = 1;
    return 0;
}
