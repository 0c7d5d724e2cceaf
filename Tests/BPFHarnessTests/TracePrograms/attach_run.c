// Loads a BPF object with libbpf, attaches one program, pins one map, then runs a
// command in a child process and prints its pid: the kernel's own answer for a trace
// replay test (see TraceKernelRecordTests).
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s OBJECT PROGRAM MAP PIN COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    struct bpf_object *object = bpf_object__open_file(argv[1], NULL);
    if (!object || bpf_object__load(object)) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    struct bpf_program *program = bpf_object__find_program_by_name(object, argv[2]);
    struct bpf_link *link = program ? bpf_program__attach(program) : NULL;
    if (!link) { fprintf(stderr, "cannot attach %s\n", argv[2]); return 1; }
    struct bpf_map *map = bpf_object__find_map_by_name(object, argv[3]);
    if (!map || bpf_map__pin(map, argv[4])) { fprintf(stderr, "cannot pin %s\n", argv[3]); return 1; }
    pid_t child = fork();
    if (child == 0) { execvp(argv[5], argv + 5); _exit(127); }
    int status;
    waitpid(child, &status, 0);
    printf("%d\n", child);
    bpf_link__destroy(link);
    bpf_object__close(object);
    return 0;
}
