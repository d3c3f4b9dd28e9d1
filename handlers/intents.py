"""What a message is: a draft to check, a question, a report, a button, or a call for help.

Staff paste drafts and ask questions in the same chat, and either can end in "?" or not,
so the decision weighs what the text is rather than one punctuation mark. Evidence that
it is a post: hashtags, @handles, links, emoji, "[photo: ...]", words addressed to an
audience ("anyone else...", "shout out to", "please share"), first-person news ("finally
qualified!"), several sentences or lines. Evidence that it asks for guidance: "can I /
should I / what do I / is it ok to / how do I", "what does the policy say", something that
happened to the sender ("a patient added me"), a short topic query ("trust logo on
linkedin"). Clear cases go one way; where the evidence is close, the answer is "both":
the answer, and the verdict for in case it was a post.

`understand` is pure and fast (regular expressions only) and never looks at the checker
or the search, so their behaviour can change without moving the routing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

CHECK, ANSWER, BOTH, REPORT_KIND, HELP, ACTION, CHECK_PROMPT = (
    "check", "answer", "both", "report", "help", "action", "check_prompt")

_F = re.IGNORECASE
MAX_READ = 3000  # characters read to decide; what a message is shows well before this, and routing stays fast
_GREETING = r"(?:(?:hi|hiya|hey|hello|morning|afternoon|ok|okay|so|um+|erm+|quick (?:one|q(?:uestion)?)|sorry[^,.:;-]{0,30}?(?:but)?)[\s,.!:;-]+)*"
_SAYING = r"(?:post|share|tweet|put (?:up|out|on)|put|send|publish|upload|write|say)"
_OK = r"(?:ok|okay|alright|all right|fine|safe|acceptable|appropriate|good)"
_WHERE = r"(?: (?:on|for|to|in) (?:my |the |our |a |an )?[\w' ]{1,30}?)?"
# "can I post this? <draft>", "check this: <draft>", "draft for the team page: <draft>"
_CHECK_PREFIX = re.compile(
    r"^\s*" + _GREETING + r"(?:"
    r"(?:can|could|may|shall) (?:i|we) " + _SAYING + r" (?:this|that|the following|something like this|these)\b[^:?\n]{0,60}|"
    r"(?:is|would) (?:this|that|the following) (?:be )?" + _OK + r"(?: to " + _SAYING + r")?" + _WHERE + r"|"
    r"(?:is|would) it (?:be )?" + _OK + r" to " + _SAYING + r" (?:this|the following)" + _WHERE + r"|"
    r"(?:would|will|does) this (?:be )?(?:ok|okay|alright|fine|work|sound ok)" + _WHERE + r"|"
    r"how does this (?:sound|look|read)[^:?\n]{0,40}|"
    r"(?:ok|okay|alright|fine|safe) to (?:" + _SAYING + r")(?: this)?" + _WHERE + r"|"
    r"(?:please )?(?:check|review|vet|look over|sense[- ]check)(?: this| my (?:draft|post|tweet|caption|status))?(?: please| for me)?"
    r"(?: (?:for|on|before)[^:?\n]{0,40})?|"
    r"could you (?:check|review|look at)(?: this| my (?:draft|post|tweet))?(?: please)?[^:?\n]{0,40}|"
    r"thoughts on this(?: (?:post|tweet|draft))?[^:?\n]{0,40}|"
    r"(?:my |proposed |planned |new )?(?:draft|post|tweet|caption)(?: for [^:?\n]{1,40})?|"
    r"(?:about|going|planning|hoping) to (?:post|tweet|share|put up|publish) this" + _WHERE + r"(?:,? (?:is (?:it|this|that) "
    r"(?:ok|okay|alright|fine)))?"
    r")\s*(?:[?:!.\-–—]+\s*|\n\s*)", _F)
# "<draft> - can I post this?" at the end
_CHECK_SUFFIX = re.compile(
    r"[\s\-–—,.!;:(]+(?:(?:can|could|may) i (?:post|share|tweet|put up|send|publish) (?:this|that|it)|"
    r"(?:is )?(?:this|it|that) (?:ok|okay|alright|fine|safe) to (?:post|share|tweet|put up)|"
    r"(?:ok|okay|alright|fine|safe) to (?:post|share|tweet|put up)(?: this)?)"
    r"\s*[?!.)]*\s*$", _F)
_LOOSE_SUFFIX = re.compile(r"[\s\-–—,.!;:(]+(?:is (?:this|that|it) (?:ok|okay|alright|all right|fine)|thoughts)\s*[?!.)]*\s*$", _F)
# 'can I post "Proud to be a nurse"?', "I'm going to post 'xyz', is that ok"
_QUOTED_DRAFT = re.compile(
    r"\b(?:post|share|tweet|put|say|write|publish|caption)\b[^\"'\u2018\u201c]{0,40}?"
    r"(?:\"([^\"]{12,})\"|\u201c([^\u201d]{12,})\u201d|'([^\n]{12,}?)'(?![a-z])|\u2018([^\u2019]{12,})\u2019)", _F)
REPORT = re.compile(
    r"^\s*/?report[- _]?contact\b|^\s*(?:report|log) (?:a |an |the |some )?(?:contact|incident)\b|"
    r"^\s*(?:i (?:want|need|would like|'d like|wanna) to|i'?d like to|let me|can i|please) (?:report|log|record) "
    r"(?:a |an |some )?(?:contact|incident)\b", _F)
_HELP = re.compile(
    r"^\s*(?:help|hi|hiya|hello|hey|yo|hola|morning|good (?:morning|afternoon|evening)|start|menu|commands|options|"
    r"what can you do|what do you do|what are you|who are you|how does (?:this|it) work|how do i use (?:this|you)|"
    r"what is this|\?+)(?:\s+(?:there|policybot|bot|everyone|all))?[\s?!.]*$", _F)
_THANKS = re.compile(r"^\s*(?:thanks|thank you|thx|ta|cheers|great|brilliant|perfect|ok(?:ay)? thanks)[\s!.]*$", _F)

# Words that only make sense as a press of one of the bot's buttons.
BUTTON_WORDS = {"helpful", "not helpful", "ask a person", "ask the comms team", "ask comms to review", "why?",
                "yes, send it", "continue report", "alert the safeguarding lead", "skip"}
_BUTTON_TYPED = re.compile(r"^\s*\[?\s*(\d{1,2}|[^\[\]\n]{1,40}?)\s*\]?\s*$")

_ACCOUNT = [
    ("official", re.compile(r"\b(?:official|trust(?:'s)? (?:account|page|twitter|facebook|instagram|linkedin)|"
                            r"corporate|team (?:account|page)|for the trust|ward(?:'s)? page|team page)\b", _F)),
    ("personal", re.compile(r"\b(?:personal|my own (?:account|page)|my account|my page|"
                            r"my (?:twitter|facebook|instagram|insta|linkedin|tiktok|fb|x))\b", _F)),
]


def _rx(*parts: str) -> re.Pattern:
    return re.compile("|".join(parts), _F)


# -- evidence that the text is a post -------------------------------------------------
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\U0001F1E6-\U0001F1FF\u2B50\u2B06\u2B07\u2B05\u27A1\u2764"
                   "\u203C\u2049\u2122\u3030\u303D]")
_SHORTCODE = re.compile(r"(?<!\w):[a-z0-9_+-]{2,30}:(?!\w)", _F)
_EMOTICON = re.compile(r"(?:^|\s)(?:[:;=]-?[()dpo3/\\|]|<3|x{2,}|xo+)(?=[\s.!?]|$)", _F)
_HASHTAG = re.compile(r"(?<![\w&#/])#[A-Za-z][\w]{1,}")
_HANDLE = re.compile(r"(?<![\w.@])@[A-Za-z0-9_]{2,}")
_URL = re.compile(r"https?://|\bwww\.|\b[\w-]+\.(?:com|org|net|co\.uk|org\.uk|nhs\.uk|uk|ly|io)/\S", _F)
_MEDIA = re.compile(r"\[(?:photo|image|picture|pic|video|gif|selfie|attached|attachment|link|poster|graphic)\b|"
                    r"\((?:photo|pic|picture|video|image)(?: attached)?\)|\bpic(?:ture)? attached\b|\blink (?:in|below)\b", _F)
_AUDIENCE_START = _rx(
    r"^(?:any ?one|any ?body|does any(?:one|body)|(?:can|could) some ?(?:one|body) (?:check|cover|swap|help|recommend|"
    r"lend|grab|bring|pick|look|send|message|ring|call|sign|share|donate|sponsor)|has any(?:one|body)|can any(?:one|body)|could any(?:one|body)|"
    r"is any(?:one|body)|will any(?:one|body)|would any(?:one|body)|who else|who(?:'s| is) (?:coming|up for|in(?! charge)|going|got|"
    r"free|around|joining)|who wants|who fancies|fancy (?:a|an|some|joining|coming)|guess (?:who|what|where)|"
    r"shout ?out|massive thanks|huge thanks|big thanks|a big thank you|thank you (?:to|so much|all|everyone)|thanks to|"
    r"congrat\w*|well done|happy (?:\w+ )?(?:day|week|month|birthday|new year|christmas|easter|eid|diwali|friday|monday)|"
    r"join us|come (?:and|along|join)|don'?t miss|reminder|psa\b|calling all|dear (?:all|followers|friends|everyone|colleagues)|"
    r"hey (?:all|everyone|guys|folks|team|twitter|friends|lovelies)|rt\b|please (?:share|rt|retweet|like|donate|sponsor|help us)|"
    r"we(?:'re| are) (?:hiring|recruiting|looking for|delighted|proud|pleased|excited|thrilled|aware|sorry|so proud)|"
    r"meet (?:our|the|[A-Z])|did you know|can we all|let'?s (?:talk|all|get|celebrate|connect)|can you guess|"
    r"can i (?:just (?:say|want to say|take a|have a)|get a (?:massive |big |huge )?(?:cheer|shout|round)|take a moment)|"
    r"who knew|what do you call|where are all)", )
_AUDIENCE = _rx(
    r"\b(?:anyone else|any ?one else|who else|is it just me|am i the only one|you all|y'?all|ya'?ll|every ?one(?!'s)|folks|"
    r"guys|my friends|followers|lovely people|fellow \w+s|all welcome|everyone welcome|please share|share this|rt if|"
    r"like and share|dm me|message me|ring me|call me|text me|inbox me|pm me|link in (?:bio|comments|the comments)|"
    r"link below|sign up|book (?:now|your|a place)|apply (?:now|by|via|here|today|online)|find out more|"
    r"donat(?:e|ions?)|sponsor me|see you all|wish me luck|discuss|thoughts\?|let me know|drop (?:me|us) a|"
    r"tag (?:a|someone|your)|thread below|more below|see below|(?:details|info) below|if you'?re an? \w+|if you are an? \w+|get in touch|contact (?:me|us|the ward)|if you know|if you see me|if you'?re (?:struggling|reading)|"
    r"worth a (?:read|watch|listen)|must (?:read|watch)|highly recommend|for anyone (?:in|who|working)|"
    r"great to see|lovely to see|good to see|watch this space|stay tuned|you are not alone|you're not alone|reach out)\b")
_NEWS_START = _rx(
    r"^(?:heartbroken|devastated|gutted|sad|sad day|lovely|amazing|great to see|lovely to see|so good to|"
    r"just|finally|best(?! practice)|so (?:proud|happy|excited|glad|sad|tired|grateful|lucky|pleased|chuffed)|today|tonight|"
    r"this (?:morning|afternoon|evening|week|weekend)|yesterday|last night|another|first (?:day|shift|week|night)|"
    r"last (?:day|night|shift)|off to|back (?:at|on|to|from)|loving|love (?:my|this|it|that)|can'?t (?:believe|wait|stop)|"
    r"what an? (?!\w+ (?:do|should|can|does) (?:i|we))|feeling|had (?:a|the|my|an)|worst|nothing like|shattered|"
    r"exhausted|knackered|buzzing|proud|thrilled|excited|delighted|honou?red|humbled|grateful|blessed|started|"
    r"starting|passed|qualified|survived|me:|mood|when you|that feeling|big news|great news|exciting news|sad news|"
    r"news:|new blog|new post|new video|thread|(?:\d+|one|two|three|four|five|six|ten|twenty|thirty) (?:years?|months?|"
    r"weeks?|days?|hours?|hour|nights?|shifts?|admissions)\b|twenty|ten years|rip\b|in memory|remembering|"
    r"throwback|#?tbt|sending|thinking of)")
_FEELING = _rx(
    r"\b(?:i'?m|i am|we'?re|we are|i was|we were|i'?ve been|we'?ve been|i feel|feeling) (?:so |really |absolutely |"
    r"very |feeling |now |officially |just |still |totally |well )*(?:proud|delighted|thrilled|excited|honou?red|humbled|"
    r"grateful|gutted|devastated|heartbroken|exhausted|shattered|knackered|buzzing|blessed|lucky|sad|nervous|pleased|"
    r"overwhelmed|chuffed|done|back|officially|crying|emotional|lost for words|speechless|over the moon|fuming|furious|livid)\b")
_SLANG = _rx(
    r"\b(?:lol|lmao|lmfao|rofl|haha\w*|hehe\w*|omg|omfg|smh|tbh|ngl|fml|ffs|wtf|rn|imo|imho|irl|tgif|yay|woo+|"
    r"wahoo|eek|ugh|argh|meh|bae|bestie|hun|babe|gutted|chuffed|bants|mood|vibes|send (?:coffee|help|wine|cake)|"
    r"this job|living (?:my|his|her) best life|i will die on this hill|simple as|rant over|#\w+)\b")
_VENT = _rx(
    r"\b(?:is it just me|am i the only one|how is (?:it|this|that) (?:fair|ok|okay|right|acceptable|legal)|"
    r"why (?:does|do|is|are|can'?t|won'?t|don'?t|doesn'?t) (?:nobody|no one|noone|everyone|they|management|"
    r"the (?:trust|government|board|managers?)|people|it always|we always|i always)|why is it always|"
    r"who knew|can we all agree|seriously[?!]|absolute(?:ly)? (?:joke|shambles|disgrace)|useless|a joke|a shambles|"
    r"disgrace(?:ful)?|ridiculous|rubbish|sick (?:of|to death)|fed up|rant|vent|again[!.]|on (?:their|our) knees|"
    r"nobody (?:seems|cares|tells)|doesn'?t care|don'?t care)\b")
_RHETORICAL = _rx(
    r"^(?:is it just me|am i the only one|how is (?:it|this|that) (?:fair|ok|okay|right|acceptable|legal)|"
    r"why (?:does|do|is|are|can'?t|won'?t|don'?t|doesn'?t) (?:nobody|no one|noone|everyone|they|management|"
    r"the (?:trust|government|board|managers?)|people|it always|we always|i always)|why is it always|who knew|"
    r"can we all agree|can we (?:just|please) talk about|would you know (?:what|how)|would you (?:be able to )?(?:spot|recognise)|"
    r"do you know how to (?:spot|help|recognise)|is it (?:wrong|bad) that i|is it (?:weird|sad|normal) that|"
    r"what do you call|how (?:many|much) more)|"
    r"\b(?:is it (?:even )?worth it|why do i bother|is it even worth)\b")
_POST_OPENER = _rx(r"^(?:not sure if i'?m (?:allowed|supposed) to (?:say|post) this|unpopular opinion|hot take|controversial|"
                   r"we need to talk about|let'?s talk about|can we talk about|"
                   r"rant incoming|just saying|i'?ll say it|someone has to say it|i don'?t care who sees this|confession)")
_AUDIENCE_END = _rx(r"(?:^|[.!?]\s+)(?:discuss|thoughts|agree|comment below|let me know|answers below|vote below|"
                    r"who'?s with me|just me\?|anyone\?|go!)\W*$")
_IMPERATIVE_START = _rx(
    r"^(?:please |do |don'?t |dont )?(?:join|come|visit|call|book|sign up|apply|share|follow|donate|vote|use (?:my|our|code)|"
    r"check out|watch|read|listen|grab|download|register|drop (?:in|by|off)|bring|remember|protect|support|help us|"
    r"tell us|talk to|hug|be kind|look after|take care|stay|get (?:your|in touch|involved|tested|vaccinated)|"
    r"save the date|mark your|spread the word|struggling\?|need (?:help|support|to talk|someone to talk to)\?|worried about)\b")
_AWARENESS = _rx(r"\b(?:awareness|appreciation|international|national|world) (?:\w+ )?(?:day|week|month)\b|"
                 r"\b#?(?:wspd|mhaw|timetotalk|nhs\w+|proudtocare)\b")
_PUBLIC_VOICE = _rx(r"^(?:our|we|we'?ve|we'?re|we are|the trust|this (?:week|month|year) (?:we|our))\b|"
                    r"\b(?:our (?:team|teams|ward|wards|service|services|staff|nurses|patients|trust|board|colleagues|"
                    r"volunteers|community))\b")

# -- evidence that it asks for guidance -----------------------------------------------
# "Are you a carer?" asks a reader, not the bot ("are you allowed to..." is the generic you of a question)
_AUDIENCE_Q = re.compile(
    r"^\s*(?:are (?:you|u) (?:a|an|one of|struggling|worried|feeling|looking|thinking|interested|passionate|free|around|"
    r"coming|ready|caring|new to|living|affected)|is your (?:child|teenager|teen|son|daughter|partner|friend|loved one|"
    r"family|mum|dad|team|ward|organisation)|do (?:you|u) know (?:someone|anyone|a |the signs|what it|how to spot)|"
    r"have (?:you|u) (?:had|got your|ever|booked|signed|seen|heard|tried|registered|checked)|could (?:you|u) be|"
    r"would (?:you|u) (?:like|be|recognise|know (?:what|how))|can (?:you|u) (?:spare|help us|guess|donate|join|name)|"
    r"will (?:you|u) (?:join|be|help|support)|do (?:you|u) (?:feel|ever|want to|need (?:help|support|someone|to talk)|"
    r"care|love|remember|live|work in|have (?:a|an) (?:story|idea|question for|passion))|what would (?:you|u) "
    r"(?:do|have done)|what do (?:you|u) (?:all |guys |lot )?think|what are your thoughts|how would (?:you|u) (?:feel|react)|"
    r"who would (?:you|u)|would (?:you|u) rather)\b", _F)
_LEAD = (r"^\s*" + _GREETING + r"(?:(?:and|but|also|plus|then|right)\s+(?:so\s+)?|please,?\s*|just wondering,?\s*|q:\s*|question:?\s*|query:?\s*|help[!.,]*\s*)?"
         r"(?:as an? [^,]{1,30},\s*)?")
_MODAL_START = re.compile(
    _LEAD + r"(?:can|could|may|might|should|shall|must|do|does|did|am|are|is|was|were|will|would|have|has|"
    r"what'?s|whats|what|how'?s|hows|how|who'?s|whos|whom|whose|who|where'?s|wheres|where|when|which|why)(?=\s)"
    r"(?!\s+(?:any ?one|any ?body|every ?one(?:'s)?|some ?one (?:check|cover|swap|help|recommend|lend|grab|bring|pick|"
    r"look|send|message|ring|call|sign|share|donate|sponsor)|you guess|we all|i just|i get a|i have a|i take a|i say a|"
    r"it just me|you call|knew|else|wants|fancies|coming|up for|going|got|free|joining|in(?! charge)|are all|"
    r"all (?:my|our|the))\b)(?<!\bwhat(?= an? ))",
    _F)
_MODAL = (r"(?:can|could|may|should|shall|must|do|does|did|am|are|is|will|would|have|has|what'?s|what|how|who|where|"
          r"when|which|why)")
_CLAUSE_ASKS = re.compile(  # after a lead-in ("Regarding WhatsApp: are...", "re the disclaimer, does it..."), yes/no only
    r"(?:[,:;]|\s[-\u2013\u2014])\s+(?:can|could|may|should|shall|must|do|does|am|are|is|will|would|have|has)\s+"
    r"(?:i|we|staff|nurses|it|there|the|a|an|my|our|this|that|these|those|they|he|she|patients?|people|clinical|"
    r"personal|work|team|bank|agency|students?|volunteers?|managers?|doctors?|consultants?|carers?|service)\b"
    r"|(?:[,:;]|\s[-\u2013\u2014])\s+(?:could|can|would|will) you (?:please )?(?:confirm|tell|advise|explain|"
    r"clarify|help|let me know|check)\b", _F)
_LAST_ASKS = re.compile(r"(?<=[.!?\n])\s+(?:can|could|may|should|shall|must|do|does|am|are|is|will|would|what'?s|what|"
                        r"how|who|where|when|which)\s+[^.!?\n]{3,}\?\s*$", _F)
_GUIDANCE = _rx(
    r"\b(?:can i|can we|could i|could we|may i|may we|should i|should we|shall i|must i|must we|do i|do we|am i|are we|"
    r"are staff|are nurses|is it (?:ok|okay|alright|all right|allowed|appropriate|acceptable|fine|safe|against|wrong|"
    r"legal|true|possible|wise|a problem|an issue|professional|unprofessional|breaking|a breach)|is that (?:ok|okay|allowed|"
    r"alright|all right|right|a problem|an issue|a rule|the rule|allowed|policy)|is there (?:a|any) (?:rule|policy|guidance|way)|"
    r"what (?:do|should|can|shall|would|must) (?:i|we|staff)|how (?:do|should|can|would|must) (?:i|we|staff)|"
    r"who (?:do|should|can) (?:i|we)|where (?:do|should|can) (?:i|we)|when (?:can|should|do) (?:i|we)|"
    r"do i (?:need|have) to|will i get in trouble|could i get in trouble|get (?:into |in )?trouble|could i lose|"
    r"what happens (?:if|when)|what if|what now|allowed to|permitted to|what are the rules|what'?s the (?:rule|policy|"
    r"guidance|process|procedure|position)|what is the (?:rule|policy|guidance|process|procedure|position)|"
    r"what does the (?:policy|guidance|trust|nmc)|does the (?:policy|guidance|trust|nmc)|"
    r"tell me (?:about|what|how|if|whether)|explain|please (?:could|can) you (?:advise|tell|explain)|"
    r"(?:could|can) you (?:advise|tell me|explain|help)|advise (?:me|whether|if|on)|any advice|advice (?:on|about|re)|"
    r"(?:any|need|want|looking for|some|for) guidance (?:on|about|re)|^\s*guidance (?:on|about|re)|i need (?:to know|advice|help|guidance)|need to know|i(?:'d| would) like (?:to know|advice|"
    r"guidance)|i want to know|wondering (?:if|whether|how|what|who)|not sure (?:if|whether|what|how|who|where)|"
    r"unsure (?:if|whether|about|what|how)|i don'?t know (?:what|how|if|whether|who)(?! to do with (?:myself|me)\b)|do you know (?:if|whether|what|"
    r"how|who)|quick question|silly q|question about|query re|help (?:me|with|please)|rules (?:on|about|for)|"
    r"policy (?:on|about|for)|how to|what to do(?! with (?:myself|me|yourself)\b)|what'?s my (?:responsibility|role|duty)|what are my (?:responsibilities|"
    r"obligations)|(?:lets|let) (?:us|staff|me|nurses) |remind me|confused (?:about|by|whether)|"
    r"(?:i )?(?:don'?t|do not) understand|is (?:that|this|it) (?:true|correct|the case|right)|am i right|best practice|"
    r"do'?s and don'?ts|what counts as|any (?:issues?|problems?|concerns?) with|anything wrong with|"
    r"(?:whether|if) (?:i|we|staff|nurses) (?:can|could|should|may|am|are|need|have)|"
    r"whether to|if i should|what (?:i|we) (?:can|can'?t|cannot|should|shouldn'?t|am allowed|are allowed)|"
    r"(?:want|like|need) to ask|a question (?:about|on|re)|my question|wonder (?:if|whether)|(?:need|want|looking for|after) (?:some )?(?:advice|guidance|"
    r"help)|know if (?:we|i|staff|you|nurses|the trust) )\b|^\s*help\b(?! us)")
_PLAN = _rx(r"\b(?:we|i|(?:my|our|the|a) (?:ward |team |clinical )?(?:team|ward|colleague|consultant|manager|student|"
             r"trainee|matron|doctor|nurse|friend|boss|lead|sister|service))(?: would| really)? ?(?:wants?|wanted|wants|"
             r"is planning|is going|has asked|is thinking of|is hoping|plans|intends|want|wants|would like|'d like|wanna|"
             r"are planning|plan|am planning|'m planning|are thinking of|'m thinking of|am thinking of|are hoping|hope|"
             r"have been asked|'ve been asked|was asked|were asked|need|intend) to (?:give|provide|speak|talk|appear|start|set up|create|make|film|post|share|"
             r"run|launch|open|use|put|record|do|write|livestream|join|promote|advertise|message|contact|reply|respond|"
             r"comment|tag|mention|name|blog|tweet|upload|take (?:a )?(?:photo|picture|video|selfie)s?)\b")
_OK_END = _rx(r"\b(?:ok|okay|alright|allowed|fine|appropriate|acceptable|a problem|an issue|permitted)\W*$")
_EITHER = re.compile(r"^\s*(?:[\w']+ ){0,2}[\w']+ or (?:[\w']+ ){0,2}[\w']+ (?:for|on|in|when|to)\b", _F)
_ASKED_TO = _rx(r"\b(?:(?:wants?|wanted|asked|asking|told|expects?|expected|needs?|encouraged|pressur(?:ed|ing)) (?:us|me|staff|"
                r"the team|everyone|nurses|all of us)|(?:been|was|were|am|are|get|got|being) (?:told|asked|expected|"
                r"encouraged|pressured|made)) to (?:post|share|tweet|film|record|like|follow|join|set up|run|promote|"
                r"write|blog|make|take|upload|comment|reply|respond|advertise|tag|like|retweet)\b")
_POLICY_WORDS = _rx(
    r"\b(?:policy|policies|guidance|guideline|guidelines|rules?|allowed|permitted|permission|disclaimer|"
    r"code of conduct|nmc|hcpc|gmc|gdpr|confidentiality|boundar(?:y|ies)|disciplin\w*|breach|approved|comms team|"
    r"communications team|foi|freedom of information|principles|privacy settings?|official account|personal account|"
    r"trust logo|the trust's|trust's (?:position|stance|view|line)|position on|stance on)\b")
_ACTOR = (r"(?:(?:a|an|my|our|one of (?:my|our|the)|the|this|that|some|his|her|their) (?:former |ex-?|current |old |new )?"
          r"(?:patient|service user|client|resident|su|carer|relative|family member|family|journalist|reporter|stranger|"
          r"man|woman|guy|lad|girl|person|member of the public|colleague|manager|boss|student|staff member|nurse|"
          r"band [2-9]|matron|sister|charge nurse|ward manager|deputy|consultant|doctor|registrar|hca|team leader|senior|"
          r"researcher|producer|film crew|documentary maker|podcaster|blogger|influencer|"
          r"(?:patient|service user|client)'?s? \w+)s?|"
          r"(?:ex|former)[- ]?(?:patient|service user|client)s?|the press|the media|a newspaper|the (?:local )?paper|"
          r"the news|^(?:patient|service user|carer|relative|journalist|reporter|colleague|manager|student|consultant|nurse|"
          r"friend|matron|doctor)s?|someone|somebody|people|(?:his|her|their) "
          r"(?:mum|dad|mother|father|sister|brother|wife|husband|partner|son|daughter|family)|patients? ?(?:'s)? ?(?:mum|dad|"
          r"mother|father|sister|brother|wife|husband|partner|family))")
# Contact that needs nothing more to be a situation ("a patient added me"), and acts that do when they touch the sender.
_CONTACT_VERB = (r"(?:added|adds|followed|follows|messaged|messages|messaging|dm'?d|dms|texted|texting|tagged|contacted|"
                 r"requested|rang|emailed|friend requested|commented on|invited|connected with|filming|filmed|recording|photographing|"
                 r"sent (?:me|a friend|a follow|"
                 r"a message|a dm|a request))")
_OTHER_VERB = (r"(?:left|found|sent|sending|asked|asking|liked|liking|posted|posting|shared|sharing|keeps|kept|wants|started|"
               r"made|created|set up|wrote|writing|is using|has been|have been|are|is|screenshotted|filmed|recorded)")
_TOUCHES_ME = (r"(?:me|my|us|our|about (?:me|us|the ward|the trust|our|my|patients|service users|"
               r"work|the (?:hospital|unit|team|service))|on (?:her|his|their|my) \w+|a (?:photo|picture|video|post|fake|review)|"
               r"photos|pictures|videos|online|in (?:the|a|our) (?:\w+ )?(?:facebook|whatsapp|staff|ward|team) (?:group|chat|page)|on (?:social media|facebook|twitter|instagram|insta|tiktok|linkedin|whatsapp))")
_HAPPENED = re.compile(
    r"\b(?:friend|follow|connection|message) requests? from\b|\b" + _ACTOR + r"\b[^.?!\n]{0,40}?\b(?:" + _CONTACT_VERB + r"|" + _OTHER_VERB + r"\b[^.?!\n]{0,30}?\b" + _TOUCHES_ME
    + r")\b", _F)
_HAPPENED_TO_ME = re.compile(
    r"\b(?:added|messaged|dm'?d|dmed|followed|friended|contacted|tagged|texted|emailed|rang|asked|commented on|"
    r"replied to|mentioned|blocked|reported|threatened|harass(?:ed|ing)|abus(?:ed|ing)|trolled)\s+me\b|"
    r"\b(?:friend|follow|connection) request from\b|\bgot (?:a|an) (?:dm|message|friend request|follow request|comment|"
    r"request|email|text)\b|\b(?:got|been|was|were|get|getting) (?:tagged|added|followed|messaged|mentioned|named)\b|"
    r"\bi (?:think i|may have|might have|accidentally) (?:posted|shared|said|tweeted|liked)\b|"
    r"^\s*(?:i'?ve |i have |we'?ve |we have )?(?:been|got) (?:contacted|approached|asked|messaged|sent|added|followed|tagged|"
    r"invited|named|mentioned)\b|"
    r"\b(?:found|finds|discovered) my (?:profile|account|facebook|instagram|insta|tiktok|twitter|linkedin|page|number)\b", _F)
_SOCIAL = _rx(r"\b(?:comment(?:ing|s)?|tagging|sharing|news stor(?:y|ies)|facebook|fb|twitter|tweet|x\.com|instagram|insta|ig|linkedin|tiktok|whatsapp|snapchat|youtube|"
              r"threads|bluesky|reddit|social media|profile|account|bio|dm|dms|selfie|post|posts|posting|blog|"
              r"friend request|follow request|logo|uniform|hashtag|livestream|video|photo|photos|pic|pics)\b")
_PLATFORM = _rx(r"\b(?:facebook|fb|twitter|tweets?|x\.com|instagram|insta|ig|linkedin|tiktok|whatsapp|snapchat|youtube|"
                r"threads|bluesky|reddit|social media|online|profile|account|bio|dms?|followers|friend request|follow request|"
                r"blog|group chat)\b")
_HYPOTHETICAL = _rx(r"\b(?:if|what if|in case|suppose|supposing|say a|when (?:a|someone|somebody|patients?|service users?)|"
                    r"how should (?:staff|we|i|nurses|people) (?:respond|react|handle|deal)|what should (?:staff|we|nurses) do)\b")
_WH_INNER = _rx(r"(?:\band|,) (?:how|what|where|who|when) (?:much|many|do|does|is|are|can|should)\b(?! you\b)")
_FIRST_PERSON = _rx(r"\b(?:i|i'?m|i'?ve|me|my|we|our)\b")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")


@dataclass(frozen=True)
class Understanding:
    kind: str                      # check | answer | both | report | help | action | check_prompt
    text: str = ""                 # what to act on: the draft without "can I post this?", or the question
    account: str = "unknown"
    post: int = 0                  # evidence the text is a post
    question: int = 0              # evidence it asks for guidance
    hypothetical: bool = False     # "what should I do if ...": a question about a case, not a case
    reasons: tuple[str, ...] = field(default=())  # the features that fired (for the scorer; never the text)


def account_hint(text: str) -> str:
    for account, pattern in _ACCOUNT:
        if pattern.search(text):
            return account
    return "unknown"


def typed_button(text: str) -> str | None:
    """The label a user typed for a button ("[Why?]", "helpful", "2"), lower-cased, or None."""
    m = _BUTTON_TYPED.match(text or "")
    if not m:
        return None
    return " ".join(m.group(1).lower().split())


def understand(message: str) -> Understanding:
    full = (message or "").strip()
    text = full[:MAX_READ]
    if not text or _HELP.match(text):
        return Understanding(HELP, text, reasons=("help",))
    if REPORT.match(text):
        return Understanding(REPORT_KIND, text, reasons=("report",))
    label = typed_button(text)
    if label and (label in BUTTON_WORDS or label.isdigit()):
        return Understanding(ACTION, label, reasons=("button",))
    if _THANKS.match(text):
        return Understanding(HELP, text, reasons=("thanks",))
    explicit = _explicit_draft(full)
    if explicit is not None:
        body, head = explicit
        account = account_hint(head)
        if not body:
            return Understanding(CHECK_PROMPT, "", account, reasons=("check-prefix",))
        return Understanding(CHECK, body, account, post=9, reasons=("check-prefix",))
    post, question, reasons = score(text)
    if len(full) > MAX_READ:
        post += 4
        reasons.append("post:very-long")
    hypothetical = bool(_HYPOTHETICAL.search(text))
    kind = decide(post, question, text)
    return Understanding(kind, full, "unknown", post, question, hypothetical, tuple(reasons))


def _explicit_draft(text: str) -> tuple[str, str] | None:
    """(draft, the words before it) when the user says outright that this is a draft, else None."""
    m = _CHECK_PREFIX.match(text)
    if m:
        head, body = text[:m.end()], text[m.end():].strip()
        # "check this for my personal account: <draft>": the account hint is before the draft
        intro, sep, rest = body.partition(":")
        if sep and len(intro) < 60 and account_hint(intro) != "unknown":
            head, body = head + intro, rest.strip()
        return _unquote(body), head
    tail_at = max(0, len(text) - 200)            # the suffix is in the last few words: don't scan a long paste
    m = _CHECK_SUFFIX.search(text, tail_at)
    if m and m.start() > 0:
        return _unquote(text[:m.start()].strip()), text[m.start():]
    m = _LOOSE_SUFFIX.search(text, tail_at)
    if m and m.start() > 0:
        body = text[:m.start()].strip()
        post, question, _ = score(body[:MAX_READ])
        if post >= 2 and question == 0:   # "<a post>, is this ok?"; not "I want to share X, is that ok?"
            return _unquote(body), text[m.start():]
    m = _QUOTED_DRAFT.search(text[:MAX_READ])
    quoted = next((g for g in m.groups() if g), "") if m else ""
    # a quoted post is most of the message ('can I tweet "..."'); a quoted phrase is the subject of a question
    if quoted and len(quoted.split()) >= 4 and len(quoted) >= 0.4 * len(text) and (
            _GUIDANCE.search(text[:m.start()] + " " + text[m.end():]) or _LOOSE_SUFFIX.search(text[m.end():] + " is that ok")):
        return quoted.strip(), text[:m.start()] + text[m.end():]
    return None


def _unquote(body: str) -> str:
    body = body.strip()
    if len(body) > 2 and body[0] + body[-1] in ('""', "''", "\u201c\u201d", "\u2018\u2019"):
        return body[1:-1].strip()
    return body


def score(text: str) -> tuple[int, int, list[str]]:
    """Evidence for a post and for a question, with the names of the features that fired."""
    reasons: list[str] = []
    post = question = 0

    def p(name: str, weight: int) -> None:
        nonlocal post
        post += weight
        reasons.append(f"post:{name}")

    def q(name: str, weight: int) -> None:
        nonlocal question
        question += weight
        reasons.append(f"question:{name}")

    words = _WORD.findall(text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if _WORD.search(s)]
    emoji = len(EMOJI.findall(text)) + len(_SHORTCODE.findall(text))

    if _HASHTAG.search(text):
        p("hashtag", 3)
    if _HANDLE.search(text):
        p("handle", 2)
    if _URL.search(text):
        p("link", 2)
    if _MEDIA.search(text):
        p("media", 3)
    if emoji:
        p("emoji", 2 if emoji == 1 else 3)
    if _EMOTICON.search(text):
        p("emoticon", 1)
    if _AUDIENCE_START.search(text):
        p("audience-start", 3)
    elif _AUDIENCE.search(text):
        p("audience", 2)
    if _NEWS_START.search(text):
        p("news-start", 2)
    if _FEELING.search(text):
        p("feeling", 2)
    bangs = text.count("!")
    if bangs:
        p("exclamation", 1 if bangs == 1 else 2)
    if _SLANG.search(text):
        p("slang", 2)
    # "why does the trust ban X?" with policy words in it is a real question, however it opens
    rhetorical = _RHETORICAL.search(text) and not (_POLICY_WORDS.search(text) or _PLATFORM.search(text))
    if rhetorical:
        p("rhetorical", 4)
    elif _VENT.search(text):
        p("venting", 2)
    if _POST_OPENER.search(text):
        p("post-opener", 4)
    if _AUDIENCE_END.search(text):
        p("asks-the-audience", 6)
    if _IMPERATIVE_START.search(text):
        p("call-to-action", 2)
    if _AWARENESS.search(text):
        p("awareness-day", 1)
    if _PUBLIC_VOICE.search(text):
        p("public-voice", 1)
    if len(lines) >= 2:
        p("several-lines", 2 if len(lines) == 2 else 3)
    if len(sentences) >= 3:
        p("several-sentences", 1)
    if len(words) > 60:
        p("long-form", 2 if len(words) <= 100 else 4)
    if re.search(r"\b(?!(?:NHS|BSMHFT|HPFT|NMC|GMC|HCPC|GDPR|FOI|PALS|CQC|RMN|CAMHS|CEO|ICU|HCA|DBS|WSPD|MHAW|"
                 r"URL|HTML)\b)[A-Z]{4,}\b", text):
        p("shouting", 1)

    reader = _AUDIENCE_Q.search(text)
    if reader:
        p("asks-the-reader", 3)
    if not (rhetorical or reader):
        modal = _MODAL_START.search(text)
        if modal:
            q("asks", 3)
        guidance = _GUIDANCE.search(text, modal.end() if modal else 0)
        if guidance:
            q("guidance", 3)
        elif modal and _GUIDANCE.search(text):
            q("asks-for-guidance", 4)      # "can I / is it ok to / should I ..." at the start
        if modal and _OK_END.search(text):
            q("asks-if-ok", 2)
        elif (text.rstrip().endswith("?") and len(words) <= 15 and _OK_END.search(text)
              and not any(r.startswith("post:audience") for r in reasons)):
            q("asks-if-ok", 3)      # "#NHS in my bio - allowed?"
    if _EITHER.search(text) and not post:
        q("either-or", 3)
    if not (rhetorical or reader) and not _MODAL_START.search(text):
        if _CLAUSE_ASKS.search(text):
            q("asks-after-lead-in", 3)
        elif _LAST_ASKS.search(text):
            q("ends-asking", 2)     # weaker: a post may end on a rhetorical question too
    if _PLAN.search(text) or _ASKED_TO.search(text):
        q("plans", 3)
    if _HAPPENED.search(text):
        q("happened-to-me", 3)
    elif _HAPPENED_TO_ME.search(text):
        q("happened-to-me", 2)
    policy_words = len(_POLICY_WORDS.findall(text))
    if policy_words:
        q("policy-words", min(policy_words, 2))
    if _WH_INNER.search(text):
        q("second-question", 2)
    stripped = text.rstrip()
    if stripped.endswith("?"):
        q("question-mark", 1)
    if (len(words) <= 8 and len(sentences) <= 1 and not post and (_SOCIAL.search(text) or _POLICY_WORDS.search(text))
            and not _FIRST_PERSON.search(text)):
        q("topic-query", 3)
    elif len(words) <= 25 and not post and _PLATFORM.search(text) and re.search(r"\b(?:me|my|i)\b", text, _F):
        q("my-social-media", 2)
    return post, question, reasons


def decide(post: int, question: int, text: str) -> str:
    """Clear evidence one way wins; close evidence both ways is 'both'; no evidence falls back on the shape."""
    if question >= 3 and question - post >= 2:
        return ANSWER
    if (post <= 3 and text.rstrip().endswith("?") and len(_WORD.findall(text)) <= 12 and _PLATFORM.search(text)
            and not _HASHTAG.search(text)):
        return BOTH   # a short question about a platform with one post-like opener: could be either
    if post >= 2 and post - question >= 2:
        return CHECK
    if post >= 2 and question >= 3:
        return BOTH
    # Little evidence either way: a short line ending in "?" asks; prose reads as a post.
    if text.rstrip().endswith("?") and post <= 1:
        return ANSWER
    if question >= 3:
        return ANSWER if post <= 1 else BOTH
    if question >= 2 and post == 0:
        return ANSWER
    # No evidence at all: a full declarative sentence reads as a post; a short fragment is anyone's guess, so both.
    words = len(_WORD.findall(text))
    if post == 0 and question == 0 and (words <= 12 or (words <= 20 and not re.search(r"[.!]\s*$", text))):
        return BOTH
    return CHECK if post >= 1 or words > 6 else BOTH


RISK = "risk"


def with_risk(u: Understanding, at_risk: bool) -> str:
    """A person at risk now outranks everything but a post, a question about a case ("what if..."), or a question
    about contact on social media (which the policy answers; the crisis information comes first either way)."""
    if not at_risk or u.hypothetical or u.kind not in (CHECK, ANSWER, BOTH):
        return u.kind
    if u.kind == CHECK and (u.post >= 2 or "check-prefix" in u.reasons):
        return CHECK
    if u.kind == ANSWER and _PLATFORM.search(u.text) and any(
            r in u.reasons for r in ("question:happened-to-me", "question:asks", "question:guidance")):
        return ANSWER
    return RISK


# -- compatibility: the older Intent interface -----------------------------------------
@dataclass(frozen=True)
class Intent:
    kind: str            # help | ask | check | check_prompt | report | both | action
    text: str = ""
    account: str = "unknown"


def classify(message: str) -> Intent:
    u = understand(message)
    return Intent({"answer": "ask"}.get(u.kind, u.kind), u.text, u.account)
