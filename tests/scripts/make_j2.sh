#!/bin/sh
# Builds a program from ten small C files and a main with `make -j2` and gcc, in a fresh
# directory under /tmp (the sandbox's own tmpfs when run there), runs it, and removes the
# directory. Prints only what is the same on every run: the objects made and the
# program's output. Make runs two compilers at once, each gcc a driver starting cc1 and as;
# the link runs collect2 and ld.
set -eu
dir=$(mktemp -d /tmp/runsc-make.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
objs=""
decls=""
calls=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    printf 'int f%d(int x) { return x * %d + %d; }\n' "$i" "$i" "$i" > "f$i.c"
    objs="$objs f$i.o"
    decls="${decls}int f$i(int);"
    calls="$calls + f$i(10)"
done
cat > main.c <<EOC
#include <stdio.h>
$decls
int main(void) {
    int total = 0 $calls;
    printf("total %d\n", total);
    return total == 495 ? 0 : 1;
}
EOC
cat > Makefile <<EOM
prog: main.o$objs
	gcc -o \$@ \$^
%.o: %.c
	gcc -O1 -c -o \$@ \$<
EOM
make -j2 -s
echo "built: $(ls *.o | tr '\n' ' ')prog"
./prog
