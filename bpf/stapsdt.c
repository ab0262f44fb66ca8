// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * .note.stapsdt, as <sys/sdt.h> writes it: one note per probe site, owner
 * "stapsdt", type 3, and a descriptor of three addresses (pc, base of
 * .stapsdt.base, semaphore; each 4 or 8 bytes by ELF class) followed by
 * "provider\0name\0arguments\0".
 */
#include "stapsdt.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT_STAPSDT 3

struct probe_list {
	struct stapsdt_probe *v;
	size_t n, cap;
};

static int add_site(struct probe_list *l, const char *provider,
		    const char *name, uint64_t semaphore)
{
	struct stapsdt_probe *p;

	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].provider, provider) == 0 &&
		    strcmp(l->v[i].name, name) == 0) {
			l->v[i].sites++;
			l->v[i].has_semaphore |= semaphore != 0;
			return 0;
		}
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;

		p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	p = &l->v[l->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->provider, sizeof(p->provider), "%s", provider);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->sites = 1;
	p->has_semaphore = semaphore != 0;
	return 0;
}

/* One note's descriptor: addresses, then three strings. */
static int parse_note(struct probe_list *l, const char *desc, size_t len,
		      size_t addr_size)
{
	const char *provider, *name, *end = desc + len;
	uint64_t semaphore = 0;

	if (len < 3 * addr_size)
		return 0;	/* malformed: skip, as readelf does */
	if (addr_size == 8)
		memcpy(&semaphore, desc + 16, 8);
	else {
		uint32_t s32;

		memcpy(&s32, desc + 8, 4);
		semaphore = s32;
	}
	provider = desc + 3 * addr_size;
	name = memchr(provider, '\0', (size_t)(end - provider));
	if (!name++ || name >= end || !memchr(name, '\0', (size_t)(end - name)))
		return 0;
	return add_site(l, provider, name, semaphore);
}

static int scan(Elf *elf, struct probe_list *l)
{
	size_t shstrndx, addr_size;
	Elf_Scn *scn = NULL;
	int r;

	if (elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx) < 0)
		return -ENOEXEC;
	addr_size = gelf_getclass(elf) == ELFCLASS32 ? 4 : 8;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		Elf_Data *data;
		const char *sname;
		GElf_Nhdr nhdr;
		size_t off = 0, name_off, desc_off;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		sname = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (!sname || strcmp(sname, ".note.stapsdt") != 0)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		while ((off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
			const char *base = data->d_buf;

			if (nhdr.n_type != NT_STAPSDT || nhdr.n_namesz != sizeof("stapsdt") ||
			    memcmp(base + name_off, "stapsdt", sizeof("stapsdt")) != 0)
				continue;
			r = parse_note(l, base + desc_off, nhdr.n_descsz, addr_size);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int stapsdt_list(const char *path, struct stapsdt_probe **ret_probes,
		 size_t *ret_n)
{
	struct probe_list l = { 0 };
	Elf *elf;
	int fd, r;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		close(fd);
		return -ENOEXEC;
	}
	r = scan(elf, &l);
	elf_end(elf);
	close(fd);
	if (r < 0) {
		free(l.v);
		return r;
	}
	*ret_probes = l.v;
	*ret_n = l.n;
	return 0;
}
