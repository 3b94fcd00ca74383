#include <cstdio>
int main(int argc, char** argv) { std::puts("seek: not yet"); return 0; }
