"""Writes CVs: contact block, summary, roles with bullets, skills, education; varied layouts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from talent._text import Writer, families, iso, slug
from talent.records import Profile

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ProfileWriter(Writer):
    """Drafts one CV at a time from a family's skill pools, keeping what it wrote as truth."""

    def draft(self, now: datetime) -> Profile:
        rng = self.rng
        family = rng.choice(families())
        years = rng.randint(1, 22)
        stack = rng.choice(family.get("stacks") or [[]])
        taken: set[str] = set()
        skills = self.pick(stack, rng.randint(min(2, len(stack)), len(stack)), taken)
        skills += self.pick(family["core"], rng.randint(4, 8), taken)
        skills += self.pick(family["nice"], rng.randint(0, 3), taken)
        del skills[12:]
        soft = self.pick(self.soft, rng.choice((0, 1, 1, 2)), taken)
        roles = self.roles(family, years, now, set(skills))
        first = rng.choice(self.world["first_names"])
        last = rng.choice(self.world["last_names"])
        name, location = f"{first} {last}", rng.choice(self.world["locations"])
        user = rng.choice((f"{slug(first)}.{slug(last)}", f"{slug(first)[0]}{slug(last)}"))
        user = user.replace("-", "") + (str(rng.randint(1, 99)) if rng.random() < 0.3 else "")
        email = f"{user}@{rng.choice(self.world['email_domains'])}"
        headline = roles[0]["title"]
        if rng.random() < 0.3:
            headline += " | " + ", ".join(self.surface(s) for s in rng.sample(skills, 2))
        bullets_only = rng.sample(skills, rng.choice((0, 1, 1, 2)))
        listed = [s for s in skills + soft if s not in bullets_only]
        rng.shuffle(listed)
        education = self.education(family, now.year - years)
        t = self.t
        sections = {
            "summary": self.summary(family, years, skills),
            "experience": self.experience(family, roles, skills, bullets_only),
            "skills": self.skill_list(listed),
            "education": "\n".join(self.degree_line(e) for e in education),
        }
        order = ["summary", "experience", "skills", "education"]
        if rng.random() < 0.35:
            order[1:3] = ["skills", "experience"]
        blocks = [self.contact_block(name, headline, email, location)]
        for key in order:
            header = rng.choice(t[f"cv_{key}_headers"])
            blocks.append(f"{header}\n{sections[key]}")
        if rng.random() < 0.4:
            blocks.append("Languages\n" + rng.choice(t["cv_languages"]))
        created = now - timedelta(seconds=int(rng.uniform(0, timedelta(days=90).total_seconds())))
        return Profile(
            0,
            name,
            email,
            headline,
            location,
            years,
            "\n\n".join(blocks) + "\n",
            iso(created),
            family["name"],
            tuple(sorted(skills + soft)),
            tuple(roles),
            tuple(education),
        )

    def roles(
        self, family: dict[str, Any], years: int, now: datetime, skills: set[str]
    ) -> list[dict[str, Any]]:
        """1-4 consecutive roles ending now, most recent first, with growing seniority."""
        rng = self.rng
        start = now.year - years
        count = rng.randint(1, min(4, years))
        bounds: list[int | None] = [
            start,
            *sorted(rng.sample(range(start + 1, now.year), count - 1)),
        ]
        bounds.append(None if rng.random() < 0.9 else now.year)
        top = "Junior" if years < 3 else "" if years < 6 else "Senior"
        if years >= 10:
            top = rng.choice(
                [x for x in ("Senior", "Lead", "Staff", "Principal") if x in family["levels"]]
            )
        ladder = (
            ["Junior", "", "Senior", top]
            if top not in ("Junior", "", "Senior")
            else ["Junior", "", "Senior"]
        )
        companies = self.companies(family["sectors"], count)
        roles = []
        for i, company in enumerate(companies):
            level = ladder[max(0, ladder.index(top) - (count - 1 - i))]
            title, _ = self.title(family, level, skills)
            roles.append(
                {
                    "title": title,
                    "company": company,
                    "start_year": bounds[i],
                    "end_year": bounds[i + 1],
                }
            )
        return roles[::-1]

    def education(self, family: dict[str, Any], career_start: int) -> list[dict[str, Any]]:
        rng = self.rng
        degrees = rng.sample(family["degrees"], rng.choice((1, 1, 1, 2)))
        schools = rng.sample(self.world["universities"], len(degrees))
        year = career_start - rng.randint(0, 1)
        entries = []
        for i, (degree, school) in enumerate(zip(degrees, schools, strict=True)):
            known = rng.random() < 0.85
            entries.append(
                {"degree": degree, "institution": school, "year": year - 2 * i if known else None}
            )
        return entries

    def degree_line(self, entry: dict[str, Any]) -> str:
        degree, school, year = entry["degree"], entry["institution"], entry["year"]
        if year is None:
            return self.rng.choice((f"{degree}, {school}", f"{degree} — {school}"))
        return self.rng.choice(
            (
                f"{degree}, {school}, {year}",
                f"{degree} — {school} ({year})",
                f"{school} | {degree} | {year}",
            )
        )

    def contact_block(self, name: str, headline: str, email: str, location: str) -> str:
        rng = self.rng
        phone = rng.choice(
            (
                f"+49 30 5550 {rng.randint(1000, 9999)}",
                f"+1 (555) 01{rng.randint(0, 9)}-{rng.randint(1000, 9999)}",
                "",
            )
        )
        style = rng.random()
        if style < 0.25:
            lines = [f"Name: {name}", f"Email: {email}"]
            lines += [f"Phone: {phone}"] if phone else []
            return "\n".join([*lines, f"Location: {location}", f"Headline: {headline}"])
        if style < 0.45:
            return f"{name} — {headline}\n{location} · {email}"
        parts = [email, location] + ([phone] if phone else [])
        if rng.random() < 0.3:
            parts.append(f"linkedin.com/in/{slug(name)}")
        rng.shuffle(parts)
        return f"{name}\n{headline}\n" + rng.choice((" | ", " · ", " • ")).join(parts)

    def summary(self, family: dict[str, Any], years: int, skills: list[str]) -> str:
        rng = self.rng
        noun = family["noun"]
        picks = [self.surface(s) for s in rng.sample(skills, 3)]
        return rng.choice(self.t["cv_summaries"]).format(
            Noun=noun[0].upper() + noun[1:],
            noun=noun,
            n=years,
            duty=rng.choice(family["duties"]),
            object=rng.choice(family["objects"]),
            s=picks[0],
            s2=picks[1],
            s3=picks[2],
        )

    def experience(
        self,
        family: dict[str, Any],
        roles: list[dict[str, Any]],
        skills: list[str],
        pending: list[str],
    ) -> str:
        """Role lines in varied layouts, each with bullets; every skill in ``pending`` is used."""
        rng = self.rng
        pending = list(pending)
        blocks = []
        for i, role in enumerate(roles):
            bullets = []
            for _ in range(rng.randint(1, 3)):
                bullets.append(self.bullet(family, skills, pending))
            while i == len(roles) - 1 and pending:
                bullets.append(self.bullet(family, skills, pending, with_skills=True))
            blocks.append(self.role_line(role) + "".join(f"\n- {b}" for b in bullets))
        return "\n\n".join(blocks)

    def bullet(
        self,
        family: dict[str, Any],
        skills: list[str],
        pending: list[str],
        *,
        with_skills: bool = False,
    ) -> str:
        rng, t = self.rng, self.t
        values = {
            "object": rng.choice(family["objects"]),
            "metric": rng.choice(family["metrics"]),
            "pct": rng.randint(5, 60),
            "k": rng.randint(3, 12),
        }
        if not with_skills and not pending and rng.random() < 0.3:
            return rng.choice(t["cv_plain_bullets"]).format(**values)
        template = rng.choice(t["cv_bullets"])
        chosen: list[str] = []
        for slot in ("s", "s2", "s3"):
            if "{" + slot + "}" in template:
                options = [s for s in skills if s not in chosen and s not in pending]
                skill = pending.pop(0) if pending else rng.choice(options)
                chosen.append(skill)
                values[slot] = self.surface(skill)
        return template.format(**values)

    def role_line(self, role: dict[str, Any]) -> str:
        rng = self.rng
        title, company = role["title"], role["company"]
        start, end = role["start_year"], role["end_year"]
        style = rng.random()
        if style < 0.2:
            months = rng.sample(_MONTHS, 2)
            span = f"{months[0]} {start} - " + (f"{months[1]} {end}" if end else "Present")
        else:
            dash = rng.choice(("-", "–"))
            span = f"{start} {dash} " + (str(end) if end else rng.choice(("present", "Present")))
        layout = rng.randrange(5)
        if layout == 0:
            return f"{title}, {company} ({span})"
        if layout == 1:
            return f"{title} at {company} | {span}"
        if layout == 2:
            return f"{title} — {company} — {span}"
        if layout == 3:
            return f"{company} | {title} | {span}"
        return f"{title} — {company}\n{span}"

    def skill_list(self, listed: list[str]) -> str:
        rng = self.rng
        names = [self.surface(s) for s in listed]
        style = rng.randrange(4) if len(names) >= 4 else 0
        if style == 0:
            return ", ".join(names)
        if style == 1:
            return " · ".join(names)
        if style == 2:
            return "\n".join(f"- {n}" for n in names)
        half = max(1, len(names) // 2)
        return f"Core: {', '.join(names[:half])}\nAlso: {', '.join(names[half:])}"
