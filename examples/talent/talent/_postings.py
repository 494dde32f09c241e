"""Writes job postings: varied, multi-paragraph descriptions around a known list of skills."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from talent._text import Writer, families, iso, join
from talent.records import Posting, TrueSkill

_SENIORITY = {"Junior": "junior", "": "mid", "Senior": "senior", "Staff": "staff"}
_SENIORITY |= {"Lead": "lead", "Principal": "principal", "Group": "lead"}
_TODAY_SHARE = 0.04  # postings forced to "fetched today" so daily discovery has work


class PostingWriter(Writer):
    """Drafts one posting at a time; ids and urls are assigned once all are sorted by time."""

    def draft(self, now: datetime) -> Posting:
        rng = self.rng
        family = rng.choice(families())
        level = rng.choice(family["levels"])
        stack = rng.choice(family.get("stacks") or [[]])
        if family.get("stacks"):  # "Go Developer" only over a Go stack
            allowed = set(stack) | set(family["core"])
        else:
            allowed = set(family["title_skills"])
        title, title_skill = self.title(family, level, allowed)

        taken: set[str] = set()
        required = [title_skill] if title_skill else []
        taken.update(required)
        if stack:
            leader = [s for s in stack[:1] if s not in taken]
            taken.update(leader)
            required += leader + self.pick(stack[1:], rng.randint(1, len(stack)), taken)
        required += self.pick(family["core"], max(0, rng.randint(3, 7) - len(required)), taken)
        required += self.pick(self.soft, rng.choice((0, 0, 1, 1, 2)), taken)
        preferred = self.pick(family["core"], rng.choice((0, 1, 1, 2, 3)), taken)
        nice = self.pick(family["nice"], rng.randint(1, 4), taken)
        while len(required) + len(preferred) + len(nice) > 14:
            (nice if len(nice) > 1 else preferred if preferred else required).pop()
        if len(required) + len(preferred) + len(nice) < 5:
            nice += self.pick(family["nice"] + family["core"], 5 - len(required) - len(nice), taken)

        years: dict[str, int] = {}
        for skill in required:
            plain = skill not in self.soft and skill not in self.certs
            if plain and len(years) < 3 and rng.random() < 0.3:
                years[skill] = rng.choice((1, 2, 2, 3, 3, 3, 4, 5, 5, 6, 7, 8, 10))
        truth = tuple(
            [TrueSkill(s, "required", years.get(s)) for s in required]
            + [TrueSkill(s, "preferred") for s in preferred]
            + [TrueSkill(s, "nice_to_have") for s in nice]
        )
        location = rng.choice(self.world["locations"])
        (company,) = self.companies(family["sectors"], 1)
        return Posting(
            posting_id=0,
            title=title,
            company=company,
            location=location,
            family=family["name"],
            seniority=_SENIORITY[level],
            description=self.description(family, title, company, location, truth),
            url="",
            fetched_at=self._fetched_at(now),
            skills=truth,
        )

    def _fetched_at(self, now: datetime) -> str:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.rng.random() < _TODAY_SHARE:
            span = (now - midnight).total_seconds()
        else:
            span = timedelta(days=30).total_seconds() - 1
        return iso(now - timedelta(seconds=int(self.rng.uniform(0, span))))

    def header(self, text: str) -> str:
        """A section header as written: plain, markdown or shouting."""
        style = self.rng.random()
        if style < 0.12:
            return f"## {text.rstrip(':')}"
        if style < 0.24:
            return text.upper()
        return text

    def description(
        self,
        family: dict[str, Any],
        title: str,
        company: str,
        location: str,
        truth: tuple[TrueSkill, ...],
    ) -> str:
        rng, t = self.rng, self.t
        required = [s.name for s in truth if s.importance == "required"]
        preferred = [s.name for s in truth if s.importance == "preferred"]
        nice = [s.name for s in truth if s.importance == "nice_to_have"]
        about = self.about(company, location)
        about_first = rng.random() < 0.8
        paragraphs = [about] if about_first else []
        paragraphs += self.role(family, title, preferred, required)
        paragraphs.append(self.requirements(truth))
        paragraphs.append(self.nice(nice))
        paragraphs.append(self.benefits())
        if not about_first:
            header = rng.choice(t["about_headers"]).format(company=company)
            paragraphs.append(f"{self.header(header)}\n{about}")
        closer = rng.choice(t["closers"]).format(company=company)
        if location.startswith("Remote"):
            closer = f"{rng.choice(t['remote_notes'])} {closer}".strip()
        if closer:
            paragraphs.append(closer)
        return "\n\n".join(paragraphs)

    def about(self, company: str, location: str) -> str:
        rng, world = self.rng, self.world
        sector = next(c["sector"] for c in world["companies"] if c["name"] == company)
        hq = location
        if location.startswith("Remote"):
            hq = rng.choice([x for x in world["locations"] if not x.startswith("Remote")])
        return rng.choice(self.t["about"]).format(
            company=company,
            size=rng.choice(self.t["company_sizes"]),
            sector=rng.choice(world["sector_words"][sector]),
            hq=hq,
            mission=rng.choice(world["missions"][sector]),
            year=rng.randint(1950, 2021),
            people=rng.choice((40, 120, 300, 800, 2500)),
        )

    def role(
        self, family: dict[str, Any], title: str, preferred: list[str], required: list[str]
    ) -> list[str]:
        rng, t = self.rng, self.t
        duty, duty2 = rng.sample(family["duties"], 2)
        opener = rng.choice(t["role_openers"]).format(title=title, duty=duty, duty2=duty2)
        plain = [s for s in required if s not in self.soft and s not in self.certs]
        mentioned = preferred + rng.sample(plain, min(len(plain), rng.choice((0, 1, 1, 2))))
        rng.shuffle(mentioned)
        sentences = []
        while mentioned:
            size = rng.randint(1, 3)
            group, mentioned = mentioned[:size], mentioned[size:]
            names = [self.surface(s) for s in group]
            sentences.append(rng.choice(t["role_skill_sentences"]).format(list=join(names)))
        closer = rng.choice(t["role_closers"])
        if rng.random() < 0.5:
            body = " ".join([opener, *sentences, closer]).strip()
            header = rng.choice(t["role_headers"])
            return [f"{self.header(header)}\n{body}" if rng.random() < 0.5 else body]
        duties = [d[0].upper() + d[1:] for d in rng.sample(family["duties"], 3)]
        bullets = "\n".join(f"- {line}" for line in [*duties, *sentences])
        return [opener, f"{self.header(rng.choice(t['role_headers']))}\n{bullets}"]

    def requirements(self, truth: tuple[TrueSkill, ...]) -> str:
        rng, t = self.rng, self.t
        items: list[str] = []
        pairable: list[str] = []
        for skill in (s for s in truth if s.importance == "required"):
            if skill.years is not None:
                template = rng.choice(t["requirement_years"])
                n = skill.years
                text = self.surface(skill.name, leading=template.startswith("{s}"))
                items.append(template.format(s=text, n=n, m=n + 2))
            elif skill.name in self.soft:
                items.append(rng.choice(t["requirement_soft"]).format(s=self.surface(skill.name)))
            elif skill.name in self.certs:
                template = rng.choice(t["requirement_cert"])
                text = self.surface(skill.name, leading=template.startswith("{s}"))
                items.append(template.format(s=text))
            else:
                pairable.append(skill.name)
        rng.shuffle(pairable)
        while pairable:
            if len(pairable) >= 2 and rng.random() < 0.3:
                a, b = pairable.pop(), pairable.pop()
                template = rng.choice(t["requirement_two"])
                items.append(template.format(s=self.surface(a), s2=self.surface(b)))
            else:
                template = rng.choice(t["requirement_one"])
                items.append(template.format(s=self.surface(pairable.pop())))
        for template in rng.sample(t["requirement_general"], rng.randint(0, 2)):
            items.append(template.format(n=rng.randint(2, 6)))
        rng.shuffle(items)
        header = self.header(rng.choice(t["requirement_headers"]))
        if rng.random() < 0.2:
            return f"{header}\n" + " ".join(f"{item}." for item in items)
        marker = rng.choice(("- ", "- ", "• ", "* "))
        return header + "".join(f"\n{marker}{item}" for item in items)

    def nice(self, nice: list[str]) -> str:
        rng, t = self.rng, self.t
        header = self.header(rng.choice(t["nice_headers"]))
        if rng.random() < 0.25:
            names = [self.surface(s) for s in nice]
            return f"{header}\nExperience with {join(names, 'or')} would be great."
        lines = []
        for skill in nice:
            template = rng.choice(t["nice_one"])
            text = self.surface(skill, leading=template.startswith("{s}"))
            lines.append(f"- {template.format(s=text)}")
        return header + "\n" + "\n".join(lines)

    def benefits(self) -> str:
        rng, t = self.rng, self.t
        perks = rng.sample(self.world["benefits"], rng.randint(3, 5))
        header = self.header(rng.choice(t["benefit_headers"]))
        if rng.random() < 0.3:
            return f"{header}\n" + rng.choice(t["benefit_prose"]).format(list=join(perks))
        return header + "".join(f"\n- {perk[0].upper()}{perk[1:]}" for perk in perks)
