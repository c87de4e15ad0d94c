/* Guest test: plain glibc, static. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    char *p = malloc(100);
    strcpy(p, "heap");
    printf("hello %s from glibc, argc=%d, %s\n", argc > 1 ? argv[1] : "?", argc, p);
    return 3;
}
